// Where llmc's own files are in a browser: nowhere on disk. The bundled models live in the in-memory
// file system of compiler/base/files.browser.ts under this root.

export function packageRoot(): string {
  return "/llmc";
}

export function bundledModelsDir(): string {
  return "/llmc/models";
}
