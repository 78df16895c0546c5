// The CUDA backend's errors, apart from the driver binding so that the package entry can export
// them without loading koffi.

/** No usable driver: the library is missing, or it reports no device. */
export class CudaUnavailableError extends Error {
  override name = "CudaUnavailableError";
}

/** A driver call failed; `code` is the driver's CUresult. */
export class CudaError extends Error {
  override name = "CudaError";
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}
