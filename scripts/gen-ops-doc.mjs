// Writes docs/ops.md from the op table (run after `npm run build`).
import { writeFileSync } from "node:fs";
import { renderOpsDoc } from "../dist/src/compiler/ops/doc.js";

writeFileSync(new URL("../docs/ops.md", import.meta.url), renderOpsDoc());
console.log("wrote docs/ops.md");
