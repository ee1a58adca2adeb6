// OnnxGraphBuilder: the building blocks every ONNX exporter here shares —
// unique value names, initializers, nodes with attributes, graph inputs and
// outputs, metadata — and CheckOnnxModel, the gate every exported file
// passes. The float32 exporter (onnx_export.h) uses it now; the int8
// exporter adds QuantizeLinear / QLinearConv / ... nodes and int8 / int32
// initializers through the same calls.
//
// Every model is opset kOnnxOpset of the default domain, with the IR version
// of the libonnx we link (onnx::IR_VERSION, 8 for libonnx 1.12).
//
// Uses Debian's libonnx protobufs (the `onnx_proto` CMake target, the same
// shared library LibTorch loads): never compile a second copy of onnx.proto
// into this process, protobuf aborts at start-up on the duplicate.
//
// Thread safety: a builder belongs to one thread.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "impulse/status.h"

namespace impulse::worker::exporters {

inline constexpr int64_t kOnnxOpset = 13;
// A dimension that stays free in the graph (the batch axis); written as
// dim_param "N".
inline constexpr int64_t kDynamicDim = -1;

class OnnxGraphBuilder {
 public:
  explicit OnnxGraphBuilder(std::string graph_name);

  // `hint` if no value or initializer has that name yet, else hint_1,
  // hint_2, ... Reserves the name it returns.
  std::string UniqueName(const std::string& hint);

  // An initializer of float32 values; `name` is made unique. Returns the
  // name used. REQUIRES: values.size() == product(dims).
  std::string AddFloatInitializer(const std::string& name, const std::vector<int64_t>& dims,
                                  std::span<const float> values);
  // An initializer from raw little-endian bytes of `elem_type`
  // (onnx::TensorProto_DataType); for float32 weights stored as bytes, and
  // for int8 / int32 tensors. REQUIRES: bytes.size() == product(dims) *
  // the element size.
  std::string AddRawInitializer(const std::string& name, int32_t elem_type,
                                const std::vector<int64_t>& dims, const std::string& bytes);

  // A node of the default domain; its name is made unique among the nodes.
  // Returns it so that attributes can be added.
  onnx::NodeProto& AddNode(const std::string& op_type, const std::string& name,
                           std::vector<std::string> inputs, std::vector<std::string> outputs);

  static void SetAttribute(onnx::NodeProto& node, const std::string& name, int64_t value);
  static void SetAttribute(onnx::NodeProto& node, const std::string& name, float value);
  static void SetAttribute(onnx::NodeProto& node, const std::string& name,
                           const std::vector<int64_t>& values);

  // Graph inputs and outputs; kDynamicDim marks the batch axis. The name is
  // reserved as is (InvalidArgument-free: callers pick fixed names first).
  void AddInput(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims);
  void AddOutput(const std::string& name, int32_t elem_type, const std::vector<int64_t>& dims);

  // The model: this graph, opset kOnnxOpset, IR onnx::IR_VERSION, producer
  // "impulse-cluster" at IMPULSE_VERSION, and `metadata` as metadata_props
  // (sorted by key). The builder is left empty.
  onnx::ModelProto Finish(const std::map<std::string, std::string>& metadata,
                          const std::string& doc_string);

 private:
  onnx::GraphProto graph_;
  std::set<std::string> names_;       // values and initializers: one namespace
  std::set<std::string> node_names_;  // nodes: their own namespace
};

// The ONNX checker (onnx::checker::check_model, full check) and strict shape
// inference with type checks on a copy of `model`. InvalidArgument with the
// checker's message when the model is not valid ONNX.
Status CheckOnnxModel(const onnx::ModelProto& model);

// Serializes `model` to `path`. Internal when the file cannot be written.
Status WriteOnnxFile(const onnx::ModelProto& model, const std::string& path);

}  // namespace impulse::worker::exporters
