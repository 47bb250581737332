// Placeholder translation unit so mindfed_cuda is a real library; no kernel uses it yet.
#include <cuda_runtime.h>

namespace mindfed::cuda {

// Number of visible CUDA devices, 0 when the driver or a device is missing.
int DeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
}

}  // namespace mindfed::cuda
