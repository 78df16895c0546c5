// A small English text, written for llmc, that `llmc init-weights` trains its vocabulary on. It only
// needs to be ordinary prose with common words, punctuation and digits, so that the pieces the
// vocabulary learns look like those of a real SentencePiece vocabulary.

export const CORPUS = `
The old lighthouse stood at the end of the harbour wall, and every evening the keeper climbed the
one hundred and twelve steps to light the lamp. He had done it for thirty years, in summer and in
winter, in fog and in clear weather, and he knew the sound of each step under his boots. The town
below him went about its business: boats came in with the tide, the market opened and closed, and
children ran along the beach until their parents called them home for supper.

On the morning of the storm, the sky was the colour of slate. The fishermen looked at the clouds and
decided to stay in port. Only one small boat was still out at sea, and nobody in the harbour knew
whose it was. The keeper watched it through his telescope as the wind grew stronger and the waves
began to break over the rocks. He wrote the time in his notebook, as he always did, and then he
went down the steps to ring the bell.

A language model reads text as a sequence of tokens. Each token is a piece of a word, a whole word,
or sometimes a single byte. The model turns every token into a vector of numbers, passes the vectors
through many layers of attention and feed-forward networks, and finally predicts which token is
likely to come next. Training adjusts millions or billions of weights so that these predictions
become better over time. When the model generates text, it samples one token, appends it to the
input, and repeats the process until it reaches a stopping point.

Attention lets each position look back at the positions before it. A query is compared with every
key, the scores are turned into weights with a softmax, and the values are added up with those
weights. Rotary position embeddings rotate pairs of numbers in the queries and keys by an angle that
depends on the position, so that the score between two tokens depends on how far apart they are.
A cache keeps the keys and values of earlier tokens, which makes each new step much cheaper than
the first one.

In the garden behind the house there were apple trees, a row of beans, and a small pond with three
goldfish. My grandmother kept a careful record of the weather: the highest and lowest temperature
of each day, the amount of rain, and the first frost of the year. She said that a garden teaches
patience, because nothing you plant today will be ready tomorrow. In 1987 the pond froze solid for
two weeks, and the fish survived under the ice, which surprised everyone except her.

Numbers appear in ordinary writing all the time: 3 apples, 12 eggs, 2024 pages, 7.5 kilometres,
100 percent. A good vocabulary splits them into digits or short groups of digits, so that the model
can learn simple arithmetic patterns. Punctuation matters too; commas, full stops, question marks
and quotation marks all carry meaning. "Where are you going?" she asked. "To the station," he said,
"and then to the coast, if the trains are running."

The library opened at nine o'clock. Students came in with their laptops and their coffee, looked for
a quiet table near the window, and started to work. Some of them were reading history, some were
writing programs, and some were simply asleep. The librarian walked between the shelves, putting
books back in their places, and thought about how many stories were kept in that one building.
What a wonderful place it was! Nobody spoke loudly; nobody was in a hurry (except, perhaps, the
students with an exam the next morning), and the well-worn chairs were always warm from the sun.
`;
