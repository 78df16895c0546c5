// The Handlebars templates of a target (codegen-templates/<target>/<name>.hbs): compiled once, strict,
// unescaped (they hold generated code and numbers only), with a `lines` helper that indents a list of
// statements, and runs of blank lines squeezed to one.

import Handlebars from "handlebars";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../../paths.js";

export class Templates {
  private readonly hb = Handlebars.create();
  private readonly cache = new Map<string, Handlebars.TemplateDelegate>();
  private partialsLoaded = false;

  /** `partials`: partial name → template file name, registered on first use. */
  constructor(
    readonly target: string,
    private readonly partials: Readonly<Record<string, string>> = {},
  ) {
    this.hb.registerHelper("lines", (lines: unknown, indent: unknown) => {
      const pad = " ".repeat(typeof indent === "number" ? indent : 0);
      const list = Array.isArray(lines) ? (lines as string[]) : String(lines).split("\n");
      return list.flatMap((l) => l.split("\n")).filter((l) => l !== "").map((l) => pad + l).join("\n");
    });
  }

  path(name: string): string {
    return join(packageRoot(), "codegen-templates", this.target, `${name}.hbs`);
  }

  render(name: string, context: Record<string, unknown>): string {
    if (!this.partialsLoaded) {
      for (const [partial, file] of Object.entries(this.partials)) this.hb.registerPartial(partial, readFileSync(this.path(file), "utf8"));
      this.partialsLoaded = true;
    }
    let t = this.cache.get(name);
    if (!t) {
      t = this.hb.compile(readFileSync(this.path(name), "utf8"), { noEscape: true, strict: true });
      this.cache.set(name, t);
    }
    return t(context).replace(/\n{3,}/g, "\n\n");
  }
}
