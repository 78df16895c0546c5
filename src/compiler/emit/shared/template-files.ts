// Where a target's kernel templates come from: codegen-templates/<target>/<name>.hbs in the
// package. In a browser (template-files.browser.ts) they are embedded in the bundle.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../../paths.js";

export function templateText(target: string, name: string): string {
  return readFileSync(join(packageRoot(), "codegen-templates", target, `${name}.hbs`), "utf8");
}
