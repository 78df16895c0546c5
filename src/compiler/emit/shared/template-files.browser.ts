// The kernel templates in a browser: the WGSL ones, embedded by scripts/build-web.mjs. CUDA is not
// emitted in a browser.

import { templates } from "llmc:embedded";

export function templateText(target: string, name: string): string {
  const text = target === "wgsl" ? templates[`${name}.hbs`] : undefined;
  if (text === undefined) throw new Error(`internal: no ${target} template "${name}" in the browser bundle`);
  return text;
}
