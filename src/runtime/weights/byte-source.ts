// The bytes of a weight file, read at positions: a file on disk in Node (file.ts), or in a browser a
// download, a Blob or an ArrayBuffer. The GGUF reader reads headers and tensors through it.

export interface ByteSource {
  readonly size: number;
  /** Up to `length` bytes at `position` (fewer only at the end); a view where the bytes are in memory. */
  read(position: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Bytes already in memory: reads are views, nothing is copied. */
export function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    read: async (position, length) => bytes.subarray(position, Math.min(position + length, bytes.byteLength)),
    close: async () => undefined,
  };
}

/** A Blob (a File the user picked): each read slices it, so the file is never held whole. */
export function blobSource(blob: Blob): ByteSource {
  return {
    size: blob.size,
    read: async (position, length) => new Uint8Array(await blob.slice(position, position + length).arrayBuffer()),
    close: async () => undefined,
  };
}

/**
 * A fetch over a ByteSource that answers Range requests as an HTTP server would: @huggingface/gguf
 * reads a header through `fetch`, so it parses any ByteSource this way, in Node and in a browser.
 */
export function rangeFetch(source: ByteSource): typeof fetch {
  return (async (_input: unknown, init?: { headers?: Record<string, string> }) => {
    const range = /bytes=(\d+)-(\d+)/.exec(init?.headers?.["Range"] ?? "");
    const start = range ? Number(range[1]) : 0;
    const end = range ? Math.min(Number(range[2]) + 1, source.size) : source.size;
    const bytes = start < end ? await source.read(start, end - start) : new Uint8Array();
    return new Response(bytes.slice(), { status: 206, headers: { "content-range": `bytes ${start}-${Math.max(start, end - 1)}/${source.size}` } });
  }) as typeof fetch;
}
