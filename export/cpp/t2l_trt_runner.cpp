// t2l_trt_runner: load a TensorRT engine, run it on random or .npy inputs, print latency percentiles and throughput.
//
//   t2l_trt_runner ENGINE [--batch N] [--iterations N] [--warmup N] [--input NAME=FILE.npy ...]
//
// Shapes: each input's optimisation-profile "opt" shape with the batch axis set to --batch (default: opt's), or the
// shape of its .npy file. Latency is host-observed per call (enqueueV3 + stream synchronise), after warm-up.
// Written against the TensorRT 10 C++ API (NvInfer.h), which TensorRT for RTX shares. Check the engine's sidecar
// (ENGINE.json) before running an engine: this tool trusts the file it is given.
#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

class Logger : public nvinfer1::ILogger {
  void log(Severity severity, const char* message) noexcept override {
    if (severity <= Severity::kWARNING) std::cerr << "[TensorRT] " << message << "\n";
  }
};

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

size_t element_size(nvinfer1::DataType type) {
  switch (type) {
    case nvinfer1::DataType::kFLOAT: case nvinfer1::DataType::kINT32: return 4;
    case nvinfer1::DataType::kHALF: return 2;
    case nvinfer1::DataType::kINT64: return 8;
    case nvinfer1::DataType::kUINT8: case nvinfer1::DataType::kINT8: case nvinfer1::DataType::kBOOL: return 1;
    default: throw std::runtime_error("unsupported tensor data type");
  }
}

int64_t volume(const nvinfer1::Dims& dims) {
  int64_t n = 1;
  for (int i = 0; i < dims.nbDims; ++i) n *= dims.d[i];
  return n;
}

std::string shape_text(const nvinfer1::Dims& dims) {
  std::ostringstream out;
  for (int i = 0; i < dims.nbDims; ++i) out << (i ? "x" : "") << dims.d[i];
  return out.str();
}

// A .npy file (format 1.x/2.x, C order): its shape and raw little-endian bytes.
struct Npy {
  std::string descr;  // numpy dtype string, e.g. "|u1", "<i8", "<f4", "<f2"
  std::vector<int64_t> shape;
  std::vector<char> data;
};

// The .npy dtype string of a TensorRT type (little-endian hosts).
std::string npy_descr(nvinfer1::DataType type) {
  switch (type) {
    case nvinfer1::DataType::kFLOAT: return "<f4";
    case nvinfer1::DataType::kHALF: return "<f2";
    case nvinfer1::DataType::kINT32: return "<i4";
    case nvinfer1::DataType::kINT64: return "<i8";
    case nvinfer1::DataType::kUINT8: return "|u1";
    case nvinfer1::DataType::kINT8: return "|i1";
    case nvinfer1::DataType::kBOOL: return "|b1";
    default: return "?";
  }
}

Npy read_npy(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error(path + ": cannot open");
  char magic[8];
  file.read(magic, 8);
  if (std::string(magic + 1, 5) != "NUMPY") throw std::runtime_error(path + ": not a .npy file");
  uint32_t header_size = 0;
  if (magic[6] == 1) {
    uint16_t size16 = 0;
    file.read(reinterpret_cast<char*>(&size16), 2);
    header_size = size16;
  } else {
    file.read(reinterpret_cast<char*>(&header_size), 4);
  }
  std::string header(header_size, '\0');
  file.read(&header[0], header_size);
  if (header.find("'fortran_order': True") != std::string::npos)
    throw std::runtime_error(path + ": Fortran-ordered arrays are not supported (save with np.ascontiguousarray)");
  Npy npy;
  const auto descr_key = header.find("'descr'");
  const auto descr_open = header.find('\'', header.find(':', descr_key) + 1);
  npy.descr = header.substr(descr_open + 1, header.find('\'', descr_open + 1) - descr_open - 1);
  const auto open = header.find('(', header.find("'shape'")), close = header.find(')', open);
  std::stringstream dims(header.substr(open + 1, close - open - 1));
  for (std::string item; std::getline(dims, item, ',');)
    if (item.find_first_not_of(' ') != std::string::npos) npy.shape.push_back(std::stoll(item));
  npy.data.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  return npy;
}

std::vector<char> random_bytes(nvinfer1::DataType type, int64_t count, std::mt19937& rng) {
  std::vector<char> bytes(static_cast<size_t>(count) * element_size(type));
  std::uniform_int_distribution<int> byte(0, 255);
  if (type == nvinfer1::DataType::kUINT8) {
    for (auto& b : bytes) b = static_cast<char>(byte(rng));
  } else if (type == nvinfer1::DataType::kINT64) {  // token ids: small non-negative values
    auto* ids = reinterpret_cast<int64_t*>(bytes.data());
    for (int64_t i = 0; i < count; ++i) ids[i] = byte(rng);
  } else if (type == nvinfer1::DataType::kFLOAT) {
    std::normal_distribution<float> normal;
    auto* values = reinterpret_cast<float*>(bytes.data());
    for (int64_t i = 0; i < count; ++i) values[i] = normal(rng);
  }  // other types: zeros
  return bytes;
}

double percentile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const size_t index = std::min(values.size() - 1, static_cast<size_t>(q * (values.size() - 1) + 0.5));
  return values[index];
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " ENGINE [--batch N] [--iterations N] [--warmup N] [--input NAME=FILE.npy]\n";
    return 2;
  }
  const std::string engine_path = argv[1];
  int batch = 0, iterations = 200, warmup = 20;
  std::map<std::string, std::string> npy_inputs;
  for (int i = 2; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) throw std::runtime_error(flag + " needs a value");
    const std::string value = argv[i + 1];
    if (flag == "--batch") batch = std::stoi(value);
    else if (flag == "--iterations") iterations = std::stoi(value);
    else if (flag == "--warmup") warmup = std::stoi(value);
    else if (flag == "--input" && value.find('=') != std::string::npos)
      npy_inputs[value.substr(0, value.find('='))] = value.substr(value.find('=') + 1);
    else throw std::runtime_error("unknown option " + flag);
  }
  if (iterations < 1 || warmup < 0) throw std::runtime_error("--iterations must be >= 1 and --warmup >= 0");

  std::ifstream file(engine_path, std::ios::binary);
  if (!file) throw std::runtime_error(engine_path + ": cannot open");
  const std::vector<char> plan((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  Logger logger;
  std::unique_ptr<nvinfer1::IRuntime> runtime(nvinfer1::createInferRuntime(logger));
  if (!runtime) throw std::runtime_error("could not create a TensorRT runtime");
  // Version-compatible engines carry their own lean runtime as host code; without this they fail to deserialise
  // (the Python runner sets engine_host_code_allowed for the same reason). Our engines are built by us.
  runtime->setEngineHostCodeAllowed(true);
  std::unique_ptr<nvinfer1::ICudaEngine> engine(runtime->deserializeCudaEngine(plan.data(), plan.size()));
  if (!engine) throw std::runtime_error(engine_path + ": not deserialisable by this TensorRT on this GPU (check "
                                        "its sidecar's runtime version and compute capabilities)");
  std::unique_ptr<nvinfer1::IExecutionContext> context(engine->createExecutionContext());
  if (!context) throw std::runtime_error("could not create an execution context (out of GPU memory?)");
  for (const auto& entry : npy_inputs) {
    bool known = false;
    for (int i = 0; i < engine->getNbIOTensors(); ++i)
      known = known || (entry.first == engine->getIOTensorName(i) &&
                        engine->getTensorIOMode(entry.first.c_str()) == nvinfer1::TensorIOMode::kINPUT);
    if (!known) throw std::runtime_error("--input " + entry.first + ": the engine has no input of that name");
  }
  cudaStream_t stream;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");

  std::mt19937 rng(0);
  std::vector<void*> buffers;
  int used_batch = 0;
  for (int i = 0; i < engine->getNbIOTensors(); ++i) {  // inputs first: outputs' shapes follow from them
    const char* name = engine->getIOTensorName(i);
    if (engine->getTensorIOMode(name) != nvinfer1::TensorIOMode::kINPUT) continue;
    const nvinfer1::DataType type = engine->getTensorDataType(name);
    nvinfer1::Dims dims = engine->getProfileShape(name, 0, nvinfer1::OptProfileSelector::kOPT);
    std::vector<char> host;
    if (npy_inputs.count(name)) {
      Npy npy = read_npy(npy_inputs[name]);
      if (npy.descr != npy_descr(type))
        throw std::runtime_error(npy_inputs[name] + ": dtype " + npy.descr + ", the input " + name + " takes " +
                                 npy_descr(type));
      if (npy.shape.size() > static_cast<size_t>(nvinfer1::Dims::MAX_DIMS))
        throw std::runtime_error(npy_inputs[name] + ": more dimensions than TensorRT tensors have");
      dims.nbDims = static_cast<int>(npy.shape.size());
      for (int d = 0; d < dims.nbDims; ++d) dims.d[d] = npy.shape[d];
      host = std::move(npy.data);
      if (static_cast<int64_t>(host.size()) != volume(dims) * static_cast<int64_t>(element_size(type)))
        throw std::runtime_error(npy_inputs[name] + ": size does not match its shape and the input's data type");
    } else {
      if (batch > 0) dims.d[0] = batch;
      host = random_bytes(type, volume(dims), rng);
    }
    used_batch = static_cast<int>(dims.d[0]);
    if (!context->setInputShape(name, dims))
      throw std::runtime_error(std::string(name) + ": shape " + shape_text(dims) + " is outside the profile");
    void* device = nullptr;
    check(cudaMalloc(&device, host.size()), "cudaMalloc");
    check(cudaMemcpy(device, host.data(), host.size(), cudaMemcpyHostToDevice), "cudaMemcpy");
    context->setTensorAddress(name, device);
    buffers.push_back(device);
    std::cout << "input  " << name << " " << shape_text(dims) << "\n";
  }
  for (int i = 0; i < engine->getNbIOTensors(); ++i) {
    const char* name = engine->getIOTensorName(i);
    if (engine->getTensorIOMode(name) != nvinfer1::TensorIOMode::kOUTPUT) continue;
    const nvinfer1::Dims dims = context->getTensorShape(name);
    void* device = nullptr;
    check(cudaMalloc(&device, volume(dims) * element_size(engine->getTensorDataType(name))), "cudaMalloc");
    context->setTensorAddress(name, device);
    buffers.push_back(device);
    std::cout << "output " << name << " " << shape_text(dims) << "\n";
  }

  std::vector<double> milliseconds;
  for (int i = 0; i < warmup + iterations; ++i) {
    const auto start = std::chrono::steady_clock::now();
    if (!context->enqueueV3(stream)) throw std::runtime_error("enqueueV3 failed");
    check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    const auto stop = std::chrono::steady_clock::now();
    if (i >= warmup) milliseconds.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  const double median = percentile(milliseconds, 0.5);
  const double mean = std::accumulate(milliseconds.begin(), milliseconds.end(), 0.0) / milliseconds.size();
  std::printf("latency over %d runs (ms): p50 %.3f  p90 %.3f  p99 %.3f  mean %.3f  min %.3f\n", iterations, median,
              percentile(milliseconds, 0.9), percentile(milliseconds, 0.99), mean,
              *std::min_element(milliseconds.begin(), milliseconds.end()));
  std::printf("throughput: %.1f batches/s, %.1f samples/s at batch %d (from the median)\n", 1000.0 / median,
              1000.0 * used_batch / median, used_batch);
  for (void* buffer : buffers) cudaFree(buffer);
  cudaStreamDestroy(stream);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "t2l_trt_runner: error: " << e.what() << "\n";
  return 1;
}
