// Where llmc's own files are, whether it runs from src/ (tests) or dist/src/ (the CLI).

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

let root: string | null = null;

/** The package root: the nearest ancestor of this file holding `models/std`. */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "models", "std")) && existsSync(join(dir, "package.json"))) return (root = dir);
    const up = dirname(dir);
    if (up === dir) throw new Error("llmc: cannot find its installation folder (models/std is missing)");
    dir = up;
  }
}

/** The bundled architecture library, searched after the importing file's own folder. */
export function bundledModelsDir(): string {
  return join(packageRoot(), "models");
}
