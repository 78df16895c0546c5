import { describe, expect, it } from "vitest";

import {
  applyChatTemplate,
  detectChatTemplate,
  tokenizerFromGGUF,
  TokenType,
  type ChatMessage,
} from "../../src/runtime/tokenizer/index.js";
import { BPE, bpeMetadata, SPM, spmByte, spmMetadata } from "../fixtures/tokenizer/vocabularies.js";

const conversation: ChatMessage[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Hi! " },
  { role: "assistant", content: "Hello. " },
  { role: "user", content: "Bye" },
];

describe("chat templates", () => {
  it("LLaMA 2", () => {
    expect(applyChatTemplate("llama2", conversation, { addGenerationPrompt: true })).toBe(
      "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi! [/INST] Hello. </s><s>[INST] Bye [/INST]",
    );
    expect(applyChatTemplate("llama2", [{ role: "user", content: "Hi" }], { addGenerationPrompt: true })).toBe(
      "<s>[INST] Hi [/INST]",
    );
  });

  it("LLaMA 3", () => {
    expect(applyChatTemplate("llama3", conversation, { addGenerationPrompt: true })).toBe(
      "<|begin_of_text|>" +
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
    expect(applyChatTemplate("llama3", [{ role: "user", content: "Hi" }], { addGenerationPrompt: false })).toBe(
      "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    );
  });

  it("Mistral", () => {
    expect(applyChatTemplate("mistral", conversation, { addGenerationPrompt: true })).toBe(
      "<s>[INST] Be brief.\n\nHi!  [/INST] Hello. </s>[INST] Bye [/INST]",
    );
    expect(applyChatTemplate("mistral", [{ role: "user", content: "Hi" }], { addGenerationPrompt: true })).toBe(
      "<s>[INST] Hi [/INST]",
    );
  });

  it("requires alternating turns for LLaMA 2 and Mistral", () => {
    const twoUsers: ChatMessage[] = [
      { role: "user", content: "a" },
      { role: "user", content: "b" },
    ];
    expect(() => applyChatTemplate("llama2", twoUsers, { addGenerationPrompt: true })).toThrow(/message 1/);
    expect(() => applyChatTemplate("mistral", [{ role: "assistant", content: "a" }], { addGenerationPrompt: true })).toThrow(
      /expected "user"/,
    );
  });

  it("produces prompts whose special tokens the tokenizer parses", () => {
    const llama3 = tokenizerFromGGUF(bpeMetadata());
    const prompt = applyChatTemplate("llama3", [{ role: "user", content: "hi" }], { addGenerationPrompt: true });
    const ids = llama3.encode(prompt, { addBos: false, parseSpecial: true });
    expect(ids.filter((id) => id >= BPE.bos)).toEqual([BPE.bos, BPE.startHeader, BPE.endHeader, BPE.eot, BPE.startHeader, BPE.endHeader]);

    // Meta's reference tokens: <s> ▁[INST] ▁hello ▁[/INST]. In LLaMA 2 "[INST]" is plain text
    // (here: bytes), so the fixture's control token [INST] is made an ordinary one.
    const types = [...(spmMetadata()["tokenizer.ggml.token_type"] as number[])];
    types[SPM.inst] = TokenType.Normal;
    const llama2 = tokenizerFromGGUF(spmMetadata({ "tokenizer.ggml.token_type": types }));
    const prompt2 = applyChatTemplate("llama2", [{ role: "user", content: "hello" }], { addGenerationPrompt: true });
    const bytes = (s: string) => Array.from(new TextEncoder().encode(s), spmByte);
    expect(llama2.encode(prompt2, { addBos: false, parseSpecial: true })).toEqual([
      SPM.bos,
      SPM["▁"],
      ...bytes("[INST]"),
      SPM["▁hello"],
      SPM["▁"],
      ...bytes("[/INST]"),
    ]);
  });

  describe("detectChatTemplate", () => {
    it("reads tokenizer.chat_template", () => {
      const llama3 =
        "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}";
      const llama2 =
        "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% endif %}{% set content = '<<SYS>>\\n' + system_message %}";
      const mistral = "{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}";
      // A file's own template is used as it is, whatever format it writes.
      for (const t of [llama3, llama2, mistral]) expect(detectChatTemplate({ "tokenizer.chat_template": t })).toEqual({ jinja: t });
      const chatml = "{% for m in messages %}{{ '<|im_start|>' + m['role'] }}{% endfor %}";
      // Any other template is the file's own, rendered as Jinja.
      expect(detectChatTemplate({ ...spmMetadata(), "tokenizer.chat_template": chatml })).toMatchObject({ jinja: chatml, bosToken: "<s>", eosToken: "</s>" });
    });

    it("falls back to the vocabulary and the model's name", () => {
      const bpe = bpeMetadata();
      expect(detectChatTemplate(bpe)).toBe("llama3");
      expect(detectChatTemplate(spmMetadata())).toBe("llama2");
      expect(detectChatTemplate(spmMetadata({ "general.name": "Mistral-7B-Instruct-v0.2" }))).toBe("mistral");
      expect(detectChatTemplate({ ...bpe, "general.architecture": "qwen2", "tokenizer.ggml.tokens": ["a"] })).toBeUndefined();
    });

    it("tells LLaMA 2's format by the vocabulary's special tokens, not by the architecture", () => {
      // Any architecture with a SentencePiece vocabulary whose BOS and EOS are <s> and </s>.
      for (const arch of ["llama", "phi3", "some-new-arch"]) expect(detectChatTemplate(spmMetadata({ "general.architecture": arch }))).toBe("llama2");
      // The same vocabulary with other BOS/EOS tokens, or not SentencePiece, has no built-in format.
      expect(detectChatTemplate(spmMetadata({ "tokenizer.ggml.bos_token_id": 0 }))).toBeUndefined();
      expect(detectChatTemplate(spmMetadata({ "tokenizer.ggml.model": "gpt2" }))).toBeUndefined();
      // The architecture is not a name: a file that says "mistral" only there gets no Mistral format.
      expect(detectChatTemplate(spmMetadata({ "general.architecture": "mistral" }))).toBe("llama2");
    });
  });
});
