#include "impulse/model/fused_ops.h"

namespace impulse::model {
namespace {

bool IsActivation(v1::LayerKind kind) {
  return kind == v1::LAYER_KIND_RELU || kind == v1::LAYER_KIND_RELU6;
}

Activation ActivationOf(v1::LayerKind kind) {
  return kind == v1::LAYER_KIND_RELU6 ? Activation::kRelu6 : Activation::kRelu;
}

std::string Ref(const LayerGraph& graph, int i) {
  return "layers[" + std::to_string(i) + "] (" + graph.layer(i).name() + ")";
}

// Walks the layers once, turning each into an op, an absorbed part of the op
// before it, or an alias.
class Fuser {
 public:
  explicit Fuser(const LayerGraph& graph)
      : op_of_layer_(graph.size(), -1),
        graph_(graph),
        readers_(graph.size()),
        absorbed_(graph.size(), false) {
    for (int i = 1; i < graph.size(); ++i) {
      for (uint32_t input : graph.layer(i).inputs()) readers_[input].push_back(i);
    }
  }

  Status Run() {
    for (int i = 1; i < graph_.size(); ++i) {
      if (absorbed_[i]) continue;
      IMPULSE_RETURN_IF_ERROR(Visit(i));
    }
    if (ops_.empty()) {
      return InvalidArgument(
          "layers: the model computes nothing (no conv, dense, pool, add, "
          "activation or softmax layer)");
    }
    const int last = graph_.size() - 1;
    if (op_of_layer_[last] != static_cast<int>(ops_.size()) - 1) {
      return InvalidArgument(Ref(graph_, last) +
                             ": the model's output must be the last operation computed");
    }
    return Status::Ok();
  }

  // The result, read by FromGraph once Run() succeeded.
  std::vector<FusedOp> ops_;
  std::vector<int> op_of_layer_;

 private:
  Status Visit(int i) {
    const v1::Layer& layer = graph_.layer(i);
    switch (layer.kind()) {
      case v1::LAYER_KIND_CONV2D:
        if (layer.groups() > 1 && !IsDepthwise(i)) {
          return InvalidArgument(Ref(graph_, i) + ".groups: the int8 engine runs a conv2d with " +
                                 "groups 1, or groups = filters = input channels (depthwise); "
                                 "got groups " +
                                 std::to_string(layer.groups()));
        }
        return AddWeighted(i, IsDepthwise(i) ? OpKind::kDepthwiseConv2D : OpKind::kConv2D);
      case v1::LAYER_KIND_DEPTHWISE_CONV2D:
        return AddWeighted(i, OpKind::kDepthwiseConv2D);
      case v1::LAYER_KIND_DENSE:
        return AddWeighted(i, OpKind::kDense);
      case v1::LAYER_KIND_ADD:
        return AddOp(i, OpKind::kAdd, /*absorb_batch_norm=*/false);
      case v1::LAYER_KIND_MAX_POOL:
      case v1::LAYER_KIND_AVG_POOL:
        IMPULSE_RETURN_IF_ERROR(CheckPoolPadding(i));
        return AddOp(i,
                     layer.kind() == v1::LAYER_KIND_MAX_POOL ? OpKind::kMaxPool : OpKind::kAvgPool,
                     false, false);
      case v1::LAYER_KIND_GLOBAL_AVG_POOL:
        return AddOp(i, OpKind::kGlobalAvgPool, false, false);
      case v1::LAYER_KIND_RELU:
      case v1::LAYER_KIND_RELU6: {
        IMPULSE_RETURN_IF_ERROR(AddOp(i, OpKind::kClamp, false, false));
        ops_.back().activation = ActivationOf(layer.kind());
        ops_.back().activation_layer = i;
        return Status::Ok();
      }
      case v1::LAYER_KIND_SOFTMAX:
        if (i != graph_.size() - 1) {
          return InvalidArgument(Ref(graph_, i) +
                                 ": a softmax must be the model's last layer; the int8 engine "
                                 "cannot run one mid-graph");
        }
        return AddOp(i, OpKind::kSoftmax, false, false);
      case v1::LAYER_KIND_FLATTEN:
      case v1::LAYER_KIND_DROPOUT:
        op_of_layer_[i] = op_of_layer_[layer.inputs(0)];
        return Status::Ok();
      case v1::LAYER_KIND_BATCH_NORM:
        return InvalidArgument(Ref(graph_, i) +
                               ": a batch_norm must follow a conv2d, depthwise_conv2d or dense "
                               "layer that nothing else reads; the int8 engine cannot run it on "
                               "its own");
      default:
        return InvalidArgument(Ref(graph_, i) + ": the int8 engine does not support " +
                               LayerKindName(layer.kind()) + " layers");
    }
  }

  bool IsDepthwise(int i) const {
    const v1::Layer& layer = graph_.layer(i);
    const uint32_t in_channels = graph_.layer(layer.inputs(0)).output_shape(0);
    return layer.groups() == in_channels && layer.filters() == in_channels;
  }

  // A window wholly in the padding would have no cell to pool.
  Status CheckPoolPadding(int i) const {
    const v1::Layer& l = graph_.layer(i);
    if (l.pad_top() >= l.kernel_h() || l.pad_bottom() >= l.kernel_h() ||
        l.pad_left() >= l.kernel_w() || l.pad_right() >= l.kernel_w()) {
      return InvalidArgument(Ref(graph_, i) +
                             ": pool padding must be smaller than the window on every side");
    }
    return Status::Ok();
  }

  Status AddWeighted(int i, OpKind kind) { return AddOp(i, kind, true, true); }

  // The single reader of layer `i` when it has exactly one, else -1.
  int SoleReader(int i) const { return readers_[i].size() == 1 ? readers_[i][0] : -1; }

  Status AddOp(int i, OpKind kind, bool absorb_batch_norm, bool absorb_activation = true) {
    FusedOp op;
    op.kind = kind;
    op.layer = i;
    op.macs = graph_.Cost(i).macs;
    for (uint32_t input : graph_.layer(i).inputs()) op.inputs.push_back(op_of_layer_[input]);
    int tail = i;
    const int bn = SoleReader(tail);
    if (absorb_batch_norm && bn >= 0 && graph_.layer(bn).kind() == v1::LAYER_KIND_BATCH_NORM) {
      op.batch_norm = bn;
      absorbed_[bn] = true;
      tail = bn;
    }
    const int act = SoleReader(tail);
    if (absorb_activation && act >= 0 && IsActivation(graph_.layer(act).kind())) {
      op.activation = ActivationOf(graph_.layer(act).kind());
      op.activation_layer = act;
      absorbed_[act] = true;
      tail = act;
    }
    op.output_layer = tail;
    const auto& shape = graph_.layer(tail).output_shape();
    op.output_shape.assign(shape.begin(), shape.end());
    op.output_elements = 1;
    for (uint32_t d : op.output_shape) op.output_elements *= d;
    const int index = static_cast<int>(ops_.size());
    for (int layer = i; layer != -1;) {
      op_of_layer_[layer] = index;
      layer = layer == tail ? -1 : SoleReader(layer);
    }
    ops_.push_back(std::move(op));
    return Status::Ok();
  }

  const LayerGraph& graph_;
  std::vector<std::vector<int>> readers_;
  std::vector<bool> absorbed_;
};

}  // namespace

Result<FusedOps> FusedOps::FromGraph(const LayerGraph& graph) {
  Fuser fuser(graph);
  IMPULSE_RETURN_IF_ERROR(fuser.Run());
  FusedOps fused;
  fused.ops_ = std::move(fuser.ops_);
  fused.op_of_layer_ = std::move(fuser.op_of_layer_);
  fused.input_shape_ = graph.input_shape();
  const FusedOp& last = fused.ops_.back();
  fused.logits_op_ =
      last.kind == OpKind::kSoftmax ? last.inputs[0] : static_cast<int>(fused.ops_.size()) - 1;
  return fused;
}

std::string OpKindName(OpKind kind) {
  switch (kind) {
    case OpKind::kConv2D:
      return "conv2d";
    case OpKind::kDepthwiseConv2D:
      return "depthwise_conv2d";
    case OpKind::kDense:
      return "dense";
    case OpKind::kAdd:
      return "add";
    case OpKind::kMaxPool:
      return "max_pool";
    case OpKind::kAvgPool:
      return "avg_pool";
    case OpKind::kGlobalAvgPool:
      return "global_avg_pool";
    case OpKind::kClamp:
      return "clamp";
    case OpKind::kSoftmax:
      return "softmax";
  }
  return "unknown";
}

}  // namespace impulse::model
