#include "worker/export/onnx_builder.h"

#include <onnx/checker.h>
#include <onnx/shape_inference/implementation.h>

#include <fstream>
#include <stdexcept>

namespace impulse::worker::exporters {
namespace {

void SetShape(onnx::ValueInfoProto& value, int32_t elem_type, const std::vector<int64_t>& dims) {
  onnx::TypeProto_Tensor* tensor = value.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(elem_type);
  onnx::TensorShapeProto* shape = tensor->mutable_shape();
  for (int64_t d : dims) {
    if (d == kDynamicDim) {
      shape->add_dim()->set_dim_param("N");
    } else {
      shape->add_dim()->set_dim_value(d);
    }
  }
}

}  // namespace

OnnxGraphBuilder::OnnxGraphBuilder(std::string graph_name) {
  graph_.set_name(std::move(graph_name));
}

std::string OnnxGraphBuilder::UniqueName(const std::string& hint) {
  std::string name = hint;
  for (int i = 1; names_.count(name) > 0; ++i) name = hint + "_" + std::to_string(i);
  names_.insert(name);
  return name;
}

std::string OnnxGraphBuilder::AddFloatInitializer(const std::string& name,
                                                  const std::vector<int64_t>& dims,
                                                  std::span<const float> values) {
  // float32 is little-endian on every host we build for, as raw_data wants.
  return AddRawInitializer(
      name, onnx::TensorProto_DataType_FLOAT, dims,
      std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
}

std::string OnnxGraphBuilder::AddRawInitializer(const std::string& name, int32_t elem_type,
                                                const std::vector<int64_t>& dims,
                                                const std::string& bytes) {
  onnx::TensorProto* tensor = graph_.add_initializer();
  tensor->set_name(UniqueName(name));
  tensor->set_data_type(elem_type);
  for (int64_t d : dims) tensor->add_dims(d);
  tensor->set_raw_data(bytes);
  return tensor->name();
}

onnx::NodeProto& OnnxGraphBuilder::AddNode(const std::string& op_type, const std::string& name,
                                           std::vector<std::string> inputs,
                                           std::vector<std::string> outputs) {
  onnx::NodeProto* node = graph_.add_node();
  node->set_op_type(op_type);
  std::string unique = name;
  for (int i = 1; node_names_.count(unique) > 0; ++i) unique = name + "_" + std::to_string(i);
  node_names_.insert(unique);
  node->set_name(unique);
  for (auto& input : inputs) node->add_input(std::move(input));
  for (auto& output : outputs) node->add_output(std::move(output));
  return *node;
}

void OnnxGraphBuilder::SetAttribute(onnx::NodeProto& node, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_INT);
  a->set_i(value);
}

void OnnxGraphBuilder::SetAttribute(onnx::NodeProto& node, const std::string& name, float value) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_FLOAT);
  a->set_f(value);
}

void OnnxGraphBuilder::SetAttribute(onnx::NodeProto& node, const std::string& name,
                                    const std::vector<int64_t>& values) {
  onnx::AttributeProto* a = node.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto_AttributeType_INTS);
  for (int64_t v : values) a->add_ints(v);
}

void OnnxGraphBuilder::AddInput(const std::string& name, int32_t elem_type,
                                const std::vector<int64_t>& dims) {
  names_.insert(name);
  onnx::ValueInfoProto* value = graph_.add_input();
  value->set_name(name);
  SetShape(*value, elem_type, dims);
}

void OnnxGraphBuilder::AddOutput(const std::string& name, int32_t elem_type,
                                 const std::vector<int64_t>& dims) {
  names_.insert(name);
  onnx::ValueInfoProto* value = graph_.add_output();
  value->set_name(name);
  SetShape(*value, elem_type, dims);
}

onnx::ModelProto OnnxGraphBuilder::Finish(const std::map<std::string, std::string>& metadata,
                                          const std::string& doc_string) {
  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("impulse-cluster");
  model.set_producer_version(IMPULSE_VERSION);
  model.set_model_version(1);
  model.set_doc_string(doc_string);
  onnx::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  for (const auto& [key, value] : metadata) {
    onnx::StringStringEntryProto* entry = model.add_metadata_props();
    entry->set_key(key);
    entry->set_value(value);
  }
  *model.mutable_graph() = std::move(graph_);
  graph_ = onnx::GraphProto();
  names_.clear();
  node_names_.clear();
  return model;
}

Status CheckOnnxModel(const onnx::ModelProto& model) {
  try {
    onnx::checker::check_model(model);
    onnx::ModelProto inferred = model;
    onnx::ShapeInferenceOptions options(/*check_type_val=*/true, /*strict_mode_val=*/1);
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("ONNX checker: ") + e.what());
  }
  return Status::Ok();
}

Status WriteOnnxFile(const onnx::ModelProto& model, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out || !model.SerializeToOstream(&out)) return Internal("cannot write " + path);
  out.close();
  if (!out) return Internal("cannot write " + path);
  return Status::Ok();
}

}  // namespace impulse::worker::exporters
