// A weight file in a page: an ArrayBuffer or Uint8Array as it is, a Blob read slice by slice, or a
// URL downloaded with progress and kept in the Cache API so the next visit does not download it.

import { blobSource, memorySource, type ByteSource } from "../runtime/weights/byte-source.js";
import { WeightFileError } from "../runtime/weights/errors.js";

/** The Cache API, as much of it as is used (typed here: the tests' typecheck has no DOM library). */
interface WeightCache {
  match(url: string): Promise<Response | undefined>;
  put(url: string, response: Response): Promise<void>;
}

/** The Cache API cache downloaded weights are kept in. */
export const WEIGHTS_CACHE = "llmc-weights";

export interface WeightBytesOptions {
  onProgress?: (loaded: number, total?: number) => void;
  cache?: boolean;
  signal?: AbortSignal;
}

export async function weightBytes(weights: ArrayBuffer | Uint8Array | Blob | string, opts: WeightBytesOptions): Promise<{ name: string; source: ByteSource }> {
  if (typeof weights === "string") return { name: weights, source: memorySource(await fetchWeights(weights, opts)) };
  if (weights instanceof Blob) return { name: weights instanceof File ? weights.name : "model.gguf", source: blobSource(weights) };
  return { name: "model.gguf", source: memorySource(weights instanceof Uint8Array ? weights : new Uint8Array(weights)) };
}

/** The file at `url`, from the cache when it is there (unless `cache: false`), else downloaded (and cached). */
export async function fetchWeights(url: string, opts: WeightBytesOptions = {}): Promise<Uint8Array<ArrayBuffer>> {
  // Only secure contexts (https, localhost) have the Cache API.
  const caches = (globalThis as { caches?: { open(name: string): Promise<WeightCache> } }).caches;
  const cache = opts.cache !== false && caches ? await caches.open(WEIGHTS_CACHE) : null;
  const cached = await cache?.match(url);
  const response = cached ?? (await fetch(url, opts.signal ? { signal: opts.signal } : {}));
  if (!response.ok) throw new WeightFileError(url, `the download failed: HTTP ${response.status} ${response.statusText}`, { hint: "Check the URL of the weight file" });
  const bytes = await readBody(url, response, opts);
  if (cache && !cached) await cache.put(url, new Response(bytes, { headers: { "content-type": "application/octet-stream", "content-length": String(bytes.byteLength) } }));
  return bytes;
}

/** The body, read chunk by chunk into one buffer (sized from Content-Length when the server says it). */
async function readBody(url: string, response: Response, opts: WeightBytesOptions): Promise<Uint8Array<ArrayBuffer>> {
  const length = Number(response.headers.get("content-length") ?? NaN);
  const total = Number.isSafeInteger(length) && length >= 0 ? length : undefined;
  const reader = response.body?.getReader();
  if (!reader) return new Uint8Array(await response.arrayBuffer());
  let buffer = new Uint8Array(total ?? 1 << 20);
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.byteLength > buffer.byteLength) {
      if (total !== undefined) throw new WeightFileError(url, `the server sent more than the ${total} bytes it announced`);
      const grown = new Uint8Array(Math.max(buffer.byteLength * 2, loaded + value.byteLength));
      grown.set(buffer.subarray(0, loaded));
      buffer = grown;
    }
    buffer.set(value, loaded);
    loaded += value.byteLength;
    opts.onProgress?.(loaded, total);
  }
  if (total !== undefined && loaded !== total) throw new WeightFileError(url, `the download ended after ${loaded} of ${total} bytes`, { hint: "Try again; the connection was cut" });
  return buffer.subarray(0, loaded);
}
