// The Handlebars templates of a target (codegen-templates/<target>/<name>.hbs): compiled once, strict,
// unescaped (they hold generated code and numbers only), with a `lines` partial for a list of
// statements: `  {{> lines body}}` on a line of its own puts each on a line, indented as the call
// (Handlebars indents standalone partials), and an empty list leaves no line at all.

import Handlebars from "handlebars";
import { templateText } from "./template-files.js";

export class Templates {
  private readonly hb = Handlebars.create();
  private readonly cache = new Map<string, Handlebars.TemplateDelegate>();
  private partialsLoaded = false;

  /** `partials`: partial name → template file name, registered on first use. */
  constructor(
    readonly target: string,
    private readonly partials: Readonly<Record<string, string>> = {},
  ) {
    this.hb.registerPartial("lines", "{{#each this}}\n{{this}}\n{{/each}}");
  }

  render(name: string, context: Record<string, unknown>): string {
    if (!this.partialsLoaded) {
      for (const [partial, file] of Object.entries(this.partials)) this.hb.registerPartial(partial, templateText(this.target, file));
      this.partialsLoaded = true;
    }
    let t = this.cache.get(name);
    if (!t) {
      t = this.hb.compile(templateText(this.target, name), { noEscape: true, strict: true });
      this.cache.set(name, t);
    }
    return t(context);
  }
}

/** Generated code holds generated identifiers, numbers and template text only: no string or
 *  character literal and no non-ASCII, except in `allowed` template text (CUDA's `extern "C"`).
 *  Anything else means text from outside (a model's names) leaked into it. */
export function checkGenerated(code: string, what: string, allowed: readonly string[] = []): void {
  for (const part of allowed.reduce((parts, a) => parts.flatMap((p) => p.split(a)), [code])) {
    const bad = /[^\x20-\x7e\n]|["'`\\$]/.exec(part);
    if (bad) throw new Error(`internal: generated ${what} contains a character (${JSON.stringify(bad[0])}) that generated code never has`);
  }
}
