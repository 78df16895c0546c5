// Running the README's embedding example: find its code block, point `import … from "llmc"` at this
// checkout's src/index.ts and the model path at a test model, import it, capture what it prints.

import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { vi } from "vitest";

/** The README's JavaScript/TypeScript code block that imports llmc. */
export function apiExample(markdown: string): string | undefined {
  const blocks = [...markdown.matchAll(/```(?:js|ts|javascript|typescript)\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.find((b) => /from "llmc"/.test(b) && b.includes("loadModel("));
}

/** Runs an example that reads the model at `modelPath`; returns what it wrote to stdout. */
export async function runExample(code: string, modelPath: string, dir: string): Promise<string> {
  const file = join(dir, `example-${Date.now()}.ts`);
  writeFileSync(file, code.replace(/from "llmc"/g, `from ${JSON.stringify(resolve("src/index.ts"))}`).replace(/"\/tmp\/tiny\.gguf"/g, JSON.stringify(modelPath)));
  let out = "";
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  const log = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void (out += `${args.join(" ")}\n`));
  try {
    await import(pathToFileURL(file).href);
  } finally {
    write.mockRestore();
    log.mockRestore();
  }
  return out;
}
