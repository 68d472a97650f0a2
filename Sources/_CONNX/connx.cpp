// The C layer's implementation: the only code in the project that touches protobuf and libonnx.

#include "connx.h"
#include "connx_errors.h"

#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <string>

using namespace onnx;
using namespace connx_detail;

struct connx_model {
    ModelProto proto;
};
struct connx_tensor_file {
    TensorProto proto;
};

namespace {

// Same for the `add` functions that return a handle: NULL on any exception.
template <typename T, typename Body>
T *guarded_ptr(Body body) {
    try {
        return body();
    } catch (...) {
        return nullptr;
    }
}

inline connx_str str(const std::string &s) { return connx_str{s.data(), s.size()}; }
inline std::string cpp(connx_str s) { return s.length ? std::string(s.data, s.length) : std::string(); }

inline GraphProto *G(const connx_graph *g) { return reinterpret_cast<GraphProto *>(const_cast<connx_graph *>(g)); }
inline NodeProto *N(const connx_node *n) { return reinterpret_cast<NodeProto *>(const_cast<connx_node *>(n)); }
inline AttributeProto *A(const connx_attribute *a) {
    return reinterpret_cast<AttributeProto *>(const_cast<connx_attribute *>(a));
}
inline TensorProto *T(const connx_tensor *t) { return reinterpret_cast<TensorProto *>(const_cast<connx_tensor *>(t)); }
inline ValueInfoProto *V(const connx_value_info *v) {
    return reinterpret_cast<ValueInfoProto *>(const_cast<connx_value_info *>(v));
}
inline TypeProto *Y(const connx_type *t) { return reinterpret_cast<TypeProto *>(const_cast<connx_type *>(t)); }
inline connx_graph *H(GraphProto *g) { return reinterpret_cast<connx_graph *>(g); }
inline connx_node *H(NodeProto *n) { return reinterpret_cast<connx_node *>(n); }
inline connx_attribute *H(AttributeProto *a) { return reinterpret_cast<connx_attribute *>(a); }
inline connx_tensor *H(TensorProto *t) { return reinterpret_cast<connx_tensor *>(t); }
inline connx_value_info *H(ValueInfoProto *v) { return reinterpret_cast<connx_value_info *>(v); }
inline connx_type *H(TypeProto *t) { return reinterpret_cast<connx_type *>(t); }

template <typename Message>
bool parse_large(Message &message, const void *bytes, size_t length) {
    // CodedInputStream's default total limit is 64 MB; models routinely exceed it. Protobuf's
    // own format cannot exceed 2 GB, so INT_MAX is the honest limit.
    google::protobuf::io::ArrayInputStream input(bytes, static_cast<int>(length));
    google::protobuf::io::CodedInputStream coded(&input);
    coded.SetTotalBytesLimit(INT_MAX);
    // Each level of subgraph nesting costs three message levels (graph, node, attribute);
    // this leaves room for the IR's limit of 64 nested subgraphs to be reported by name,
    // and stops hostile nesting before it can exhaust the stack.
    coded.SetRecursionLimit(connx_message_nesting_limit);
    return message.ParseFromCodedStream(&coded) && coded.ConsumedEntireMessage();
}

template <typename Message>
connx_error *serialize_message(const Message &message, connx_bytes *out, const char *what) {
    size_t size = message.ByteSizeLong();
    if (size > static_cast<size_t>(INT_MAX))
        return error_with_log(std::string(what) + ": the message is " + std::to_string(size) +
                              " bytes, above protobuf's 2 GB limit; store tensors as external data");
    auto *data = static_cast<uint8_t *>(std::malloc(size ? size : 1));
    if (!data) return error_with_log(std::string(what) + ": out of memory");
    if (!message.SerializeToArray(data, static_cast<int>(size))) {
        std::free(data);
        return error_with_log(std::string(what) + ": protobuf could not serialize the message");
    }
    out->data = data;
    out->length = size;
    return nullptr;
}

std::string tensor_label(const TensorProto &t) {
    return t.name().empty() ? std::string("tensor (unnamed)") : "tensor '" + t.name() + "'";
}

// Bytes per element in raw_data, 0 for strings and unknown types.
size_t element_size(int32_t type) {
    switch (type) {
        case TensorProto::BOOL: case TensorProto::UINT8: case TensorProto::INT8: return 1;
        case TensorProto::UINT16: case TensorProto::INT16: case TensorProto::FLOAT16: case TensorProto::BFLOAT16: return 2;
        case TensorProto::FLOAT: case TensorProto::INT32: case TensorProto::UINT32: return 4;
        case TensorProto::DOUBLE: case TensorProto::INT64: case TensorProto::UINT64: case TensorProto::COMPLEX64: return 8;
        case TensorProto::COMPLEX128: return 16;
        default: return 0;
    }
}

// Little-endian store of the low `size` bytes of `value`, independent of host byte order.
inline void store_le(uint8_t *dst, uint64_t value, size_t size) {
    for (size_t b = 0; b < size; ++b) dst[b] = static_cast<uint8_t>(value >> (8 * b));
}

template <typename Field, typename Convert>
void copy_typed(const Field &field, uint8_t *dst, size_t size, Convert convert) {
    for (int i = 0; i < field.size(); ++i) store_le(dst + static_cast<size_t>(i) * size, convert(field.Get(i)), size);
}

inline uint64_t float_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline uint64_t double_bits(double d) { uint64_t u; std::memcpy(&u, &d, 8); return u; }

// Inputs that crash libonnx 1.12's own shape inference instead of failing it (found by fuzzing):
// convPoolShapeInference divides by each stride, so a zero stride is SIGFPE. Refused first, with
// the node's name; subgraphs too (nesting is bounded by the parser's recursion limit).

// The rank a graph declares for a value (graph input, value_info, output or initializer), or -1.
int declared_rank(const GraphProto &graph, const std::string &name) {
    for (const TensorProto &t : graph.initializer())
        if (t.name() == name) return t.dims_size();
    auto from = [&](const auto &infos) -> int {
        for (const ValueInfoProto &v : infos)
            if (v.name() == name && v.type().has_tensor_type() && v.type().tensor_type().has_shape())
                return v.type().tensor_type().shape().dim_size();
        return -1;
    };
    for (int r : {from(graph.input()), from(graph.value_info()), from(graph.output())})
        if (r >= 0) return r;
    return -1;
}

std::string libonnx_crasher(const GraphProto &graph) {
    for (const NodeProto &node : graph.node()) {
        const std::string &op = node.op_type();
        const bool conv_pool = (node.domain().empty() || node.domain() == "ai.onnx") &&
                               (op == "Conv" || op == "ConvInteger" || op == "QLinearConv" || op == "MaxPool" ||
                                op == "AveragePool" || op == "LpPool");
        // Without kernel_shape, convPoolShapeInference takes the kernel from W's spatial dims and
        // reads as many spatial dims of X without checking that X has them (a read past the end).
        const int weight_index = op == "QLinearConv" ? 3 : 1;
        bool has_kernel_shape = false;
        for (const AttributeProto &a : node.attribute()) has_kernel_shape |= a.name() == "kernel_shape";
        if (conv_pool && !has_kernel_shape && op != "MaxPool" && op != "AveragePool" && op != "LpPool" &&
            node.input_size() > weight_index) {
            const int x_rank = declared_rank(graph, node.input(0));
            const int w_rank = declared_rank(graph, node.input(weight_index));
            if (x_rank >= 0 && w_rank >= 0 && x_rank != w_rank)
                return "node '" + node.name() + "' (" + op + "): weight '" + node.input(weight_index) + "' has rank " +
                       std::to_string(w_rank) + " but input '" + node.input(0) + "' has rank " + std::to_string(x_rank);
        }
        for (const AttributeProto &a : node.attribute()) {
            if (conv_pool && a.name() == "strides")
                for (int64_t v : a.ints())
                    if (v <= 0)
                        return "node '" + node.name() + "' (" + op + "): strides must be positive, got " + std::to_string(v);
            if (a.has_g()) {
                std::string found = libonnx_crasher(a.g());
                if (!found.empty()) return found;
            }
            for (const GraphProto &g : a.graphs()) {
                std::string found = libonnx_crasher(g);
                if (!found.empty()) return found;
            }
        }
    }
    return "";
}

}  // namespace

extern "C" {

void connx_error_free(connx_error *error) {
    if (!error || error == oom_error()) return;
    std::free(error->message);
    std::free(error);
}

void connx_bytes_free(connx_bytes bytes) { std::free(bytes.data); }

// MARK: - Models

connx_error *connx_model_parse(const void *bytes, size_t length, connx_model **out) {
    *out = nullptr;
    return guarded("parsing the model", [&]() -> connx_error * {
        if (length > static_cast<size_t>(INT_MAX))
            return error_with_log("the file is larger than protobuf's 2 GB limit for one message");
        auto *model = new connx_model();
        if (!parse_large(model->proto, bytes, length)) {
            delete model;
            return error_with_log("the bytes do not parse as an ONNX ModelProto (truncated, text, another format, "
                                  "or messages nested more than " + std::to_string(connx_message_nesting_limit) +
                                  " levels deep)");
        }
        *out = model;
        return nullptr;
    });
}

connx_error *connx_model_new(connx_model **out) {
    *out = nullptr;
    return guarded("creating a model", [&]() -> connx_error * {
        auto *model = new connx_model();
        model->proto.mutable_graph();
        *out = model;
        return nullptr;
    });
}

void connx_model_free(connx_model *model) { delete model; }

connx_error *connx_model_serialize(const connx_model *model, connx_bytes *out) {
    *out = connx_bytes{nullptr, 0};
    return guarded("serializing the model", [&] { return serialize_message(model->proto, out, "serializing the model"); });
}

connx_error *connx_model_check(const connx_model *model) {
    return guarded("ONNX checker", [&]() -> connx_error * {
        const std::string crasher = libonnx_crasher(model->proto.graph());
        if (!crasher.empty()) return error_with_log("ONNX checker: " + crasher);
        checker::check_model(model->proto);
        // libonnx 1.12's check_model has no full_check flag; the Python `full_check=True` is
        // check_model followed by strict shape inference with type checking, done here.
        ModelProto copy = model->proto;
        shape_inference::InferShapes(copy, OpSchemaRegistry::Instance(), ShapeInferenceOptions(true, 1, false));
        return nullptr;
    });
}

connx_error *connx_model_infer_shapes(const connx_model *model, connx_model **out) {
    *out = nullptr;
    return guarded("ONNX shape inference", [&]() -> connx_error * {
        const std::string crasher = libonnx_crasher(model->proto.graph());
        if (!crasher.empty()) return error_with_log("ONNX shape inference: " + crasher);
        auto *inferred = new connx_model();
        inferred->proto = model->proto;
        try {
            shape_inference::InferShapes(inferred->proto, OpSchemaRegistry::Instance(),
                                         ShapeInferenceOptions(true, 1, false));
        } catch (...) {
            delete inferred;
            throw;
        }
        *out = inferred;
        return nullptr;
    });
}

int64_t connx_known_opset_max(connx_str domain) {
    try {
        std::string d = cpp(domain);
        if (d == "ai.onnx") d = "";
        const auto &map = OpSchemaRegistry::DomainToVersionRange::Instance().Map();
        auto it = map.find(d);
        return it == map.end() ? -1 : it->second.second;
    } catch (...) {
        return -1;
    }
}

int64_t connx_model_ir_version(const connx_model *m) { return m->proto.ir_version(); }
connx_str connx_model_producer_name(const connx_model *m) { return str(m->proto.producer_name()); }
connx_str connx_model_producer_version(const connx_model *m) { return str(m->proto.producer_version()); }
connx_str connx_model_domain(const connx_model *m) { return str(m->proto.domain()); }
int64_t connx_model_model_version(const connx_model *m) { return m->proto.model_version(); }
connx_str connx_model_doc_string(const connx_model *m) { return str(m->proto.doc_string()); }
size_t connx_model_opset_count(const connx_model *m) { return m->proto.opset_import_size(); }
void connx_model_opset(const connx_model *m, size_t i, connx_str *domain, int64_t *version) {
    const auto &op = m->proto.opset_import(static_cast<int>(i));
    *domain = str(op.domain());
    *version = op.version();
}
size_t connx_model_metadata_count(const connx_model *m) { return m->proto.metadata_props_size(); }
void connx_model_metadata(const connx_model *m, size_t i, connx_str *key, connx_str *value) {
    const auto &p = m->proto.metadata_props(static_cast<int>(i));
    *key = str(p.key());
    *value = str(p.value());
}
size_t connx_model_function_count(const connx_model *m) { return m->proto.functions_size(); }
int connx_model_has_graph(const connx_model *m) { return m->proto.has_graph(); }
connx_graph *connx_model_graph(connx_model *m) {
    return guarded_ptr<connx_graph>([&] { return H(m->proto.mutable_graph()); });
}

connx_error *connx_model_set_strings(connx_model *m, connx_str producer_name, connx_str producer_version,
                                     connx_str domain, connx_str doc_string) {
    return guarded("building the model", [&]() -> connx_error * {
        m->proto.set_producer_name(cpp(producer_name));
        m->proto.set_producer_version(cpp(producer_version));
        m->proto.set_domain(cpp(domain));
        m->proto.set_doc_string(cpp(doc_string));
        return nullptr;
    });
}
void connx_model_set_versions(connx_model *m, int64_t ir_version, int64_t model_version) {
    m->proto.set_ir_version(ir_version);
    m->proto.set_model_version(model_version);
}
connx_error *connx_model_add_opset(connx_model *m, connx_str domain, int64_t version) {
    return guarded("building the model", [&]() -> connx_error * {
        auto *op = m->proto.add_opset_import();
        op->set_domain(cpp(domain));
        op->set_version(version);
        return nullptr;
    });
}
connx_error *connx_model_add_metadata(connx_model *m, connx_str key, connx_str value) {
    return guarded("building the model", [&]() -> connx_error * {
        auto *p = m->proto.add_metadata_props();
        p->set_key(cpp(key));
        p->set_value(cpp(value));
        return nullptr;
    });
}

// MARK: - Graphs

connx_str connx_graph_name(const connx_graph *g) { return str(G(g)->name()); }
connx_str connx_graph_doc_string(const connx_graph *g) { return str(G(g)->doc_string()); }
size_t connx_graph_node_count(const connx_graph *g) { return G(g)->node_size(); }
connx_node *connx_graph_node(const connx_graph *g, size_t i) { return H(G(g)->mutable_node(static_cast<int>(i))); }
size_t connx_graph_input_count(const connx_graph *g) { return G(g)->input_size(); }
connx_value_info *connx_graph_input(const connx_graph *g, size_t i) { return H(G(g)->mutable_input(static_cast<int>(i))); }
size_t connx_graph_output_count(const connx_graph *g) { return G(g)->output_size(); }
connx_value_info *connx_graph_output(const connx_graph *g, size_t i) { return H(G(g)->mutable_output(static_cast<int>(i))); }
size_t connx_graph_value_info_count(const connx_graph *g) { return G(g)->value_info_size(); }
connx_value_info *connx_graph_value_info(const connx_graph *g, size_t i) {
    return H(G(g)->mutable_value_info(static_cast<int>(i)));
}
size_t connx_graph_initializer_count(const connx_graph *g) { return G(g)->initializer_size(); }
connx_tensor *connx_graph_initializer(const connx_graph *g, size_t i) {
    return H(G(g)->mutable_initializer(static_cast<int>(i)));
}
size_t connx_graph_sparse_initializer_count(const connx_graph *g) { return G(g)->sparse_initializer_size(); }

connx_error *connx_graph_set_strings(connx_graph *g, connx_str name, connx_str doc_string) {
    return guarded("building a graph", [&]() -> connx_error * {
        G(g)->set_name(cpp(name));
        G(g)->set_doc_string(cpp(doc_string));
        return nullptr;
    });
}
connx_node *connx_graph_add_node(connx_graph *g) { return guarded_ptr<connx_node>([&] { return H(G(g)->add_node()); }); }
connx_value_info *connx_graph_add_input(connx_graph *g) {
    return guarded_ptr<connx_value_info>([&] { return H(G(g)->add_input()); });
}
connx_value_info *connx_graph_add_output(connx_graph *g) {
    return guarded_ptr<connx_value_info>([&] { return H(G(g)->add_output()); });
}
connx_value_info *connx_graph_add_value_info(connx_graph *g) {
    return guarded_ptr<connx_value_info>([&] { return H(G(g)->add_value_info()); });
}
connx_tensor *connx_graph_add_initializer(connx_graph *g) {
    return guarded_ptr<connx_tensor>([&] { return H(G(g)->add_initializer()); });
}

// MARK: - Nodes

connx_str connx_node_name(const connx_node *n) { return str(N(n)->name()); }
connx_str connx_node_op_type(const connx_node *n) { return str(N(n)->op_type()); }
connx_str connx_node_domain(const connx_node *n) { return str(N(n)->domain()); }
connx_str connx_node_doc_string(const connx_node *n) { return str(N(n)->doc_string()); }
size_t connx_node_input_count(const connx_node *n) { return N(n)->input_size(); }
connx_str connx_node_input(const connx_node *n, size_t i) { return str(N(n)->input(static_cast<int>(i))); }
size_t connx_node_output_count(const connx_node *n) { return N(n)->output_size(); }
connx_str connx_node_output(const connx_node *n, size_t i) { return str(N(n)->output(static_cast<int>(i))); }
size_t connx_node_attribute_count(const connx_node *n) { return N(n)->attribute_size(); }
connx_attribute *connx_node_attribute(const connx_node *n, size_t i) {
    return H(N(n)->mutable_attribute(static_cast<int>(i)));
}

connx_error *connx_node_set_strings(connx_node *n, connx_str name, connx_str op_type, connx_str domain,
                                    connx_str doc_string) {
    return guarded("building a node", [&]() -> connx_error * {
        N(n)->set_name(cpp(name));
        N(n)->set_op_type(cpp(op_type));
        N(n)->set_domain(cpp(domain));
        N(n)->set_doc_string(cpp(doc_string));
        return nullptr;
    });
}
connx_error *connx_node_add_input(connx_node *n, connx_str name) {
    return guarded("building a node", [&]() -> connx_error * {
        N(n)->add_input(cpp(name));
        return nullptr;
    });
}
connx_error *connx_node_add_output(connx_node *n, connx_str name) {
    return guarded("building a node", [&]() -> connx_error * {
        N(n)->add_output(cpp(name));
        return nullptr;
    });
}
connx_attribute *connx_node_add_attribute(connx_node *n) {
    return guarded_ptr<connx_attribute>([&] { return H(N(n)->add_attribute()); });
}

// MARK: - Attributes

connx_str connx_attribute_name(const connx_attribute *a) { return str(A(a)->name()); }
connx_str connx_attribute_doc_string(const connx_attribute *a) { return str(A(a)->doc_string()); }
connx_str connx_attribute_ref_attr_name(const connx_attribute *a) { return str(A(a)->ref_attr_name()); }
int32_t connx_attribute_type(const connx_attribute *a) { return A(a)->type(); }
float connx_attribute_f(const connx_attribute *a) { return A(a)->f(); }
int64_t connx_attribute_i(const connx_attribute *a) { return A(a)->i(); }
connx_str connx_attribute_s(const connx_attribute *a) { return str(A(a)->s()); }
connx_tensor *connx_attribute_t(const connx_attribute *a) { return A(a)->has_t() ? H(A(a)->mutable_t()) : nullptr; }
connx_graph *connx_attribute_g(const connx_attribute *a) { return A(a)->has_g() ? H(A(a)->mutable_g()) : nullptr; }
size_t connx_attribute_floats_count(const connx_attribute *a) { return A(a)->floats_size(); }
const float *connx_attribute_floats(const connx_attribute *a) { return A(a)->floats().data(); }
size_t connx_attribute_ints_count(const connx_attribute *a) { return A(a)->ints_size(); }
const int64_t *connx_attribute_ints(const connx_attribute *a) { return A(a)->ints().data(); }
size_t connx_attribute_strings_count(const connx_attribute *a) { return A(a)->strings_size(); }
connx_str connx_attribute_string(const connx_attribute *a, size_t i) { return str(A(a)->strings(static_cast<int>(i))); }
size_t connx_attribute_tensors_count(const connx_attribute *a) { return A(a)->tensors_size(); }
connx_tensor *connx_attribute_tensor(const connx_attribute *a, size_t i) {
    return H(A(a)->mutable_tensors(static_cast<int>(i)));
}
size_t connx_attribute_graphs_count(const connx_attribute *a) { return A(a)->graphs_size(); }
connx_graph *connx_attribute_graph(const connx_attribute *a, size_t i) {
    return H(A(a)->mutable_graphs(static_cast<int>(i)));
}

connx_error *connx_attribute_set_strings(connx_attribute *a, connx_str name, connx_str doc_string,
                                         connx_str ref_attr_name) {
    return guarded("building an attribute", [&]() -> connx_error * {
        A(a)->set_name(cpp(name));
        A(a)->set_doc_string(cpp(doc_string));
        A(a)->set_ref_attr_name(cpp(ref_attr_name));
        return nullptr;
    });
}
void connx_attribute_set_type(connx_attribute *a, int32_t type) {
    if (AttributeProto_AttributeType_IsValid(type)) A(a)->set_type(static_cast<AttributeProto_AttributeType>(type));
}
void connx_attribute_set_f(connx_attribute *a, float value) { A(a)->set_f(value); }
void connx_attribute_set_i(connx_attribute *a, int64_t value) { A(a)->set_i(value); }
connx_error *connx_attribute_set_s(connx_attribute *a, connx_str value) {
    return guarded("building an attribute", [&]() -> connx_error * {
        A(a)->set_s(cpp(value));
        return nullptr;
    });
}
connx_tensor *connx_attribute_mutable_t(connx_attribute *a) {
    return guarded_ptr<connx_tensor>([&] { return H(A(a)->mutable_t()); });
}
connx_graph *connx_attribute_mutable_g(connx_attribute *a) {
    return guarded_ptr<connx_graph>([&] { return H(A(a)->mutable_g()); });
}
connx_error *connx_attribute_add_floats(connx_attribute *a, const float *values, size_t count) {
    return guarded("building an attribute", [&]() -> connx_error * {
        for (size_t i = 0; i < count; ++i) A(a)->add_floats(values[i]);
        return nullptr;
    });
}
connx_error *connx_attribute_add_ints(connx_attribute *a, const int64_t *values, size_t count) {
    return guarded("building an attribute", [&]() -> connx_error * {
        for (size_t i = 0; i < count; ++i) A(a)->add_ints(values[i]);
        return nullptr;
    });
}
connx_error *connx_attribute_add_string(connx_attribute *a, connx_str value) {
    return guarded("building an attribute", [&]() -> connx_error * {
        A(a)->add_strings(cpp(value));
        return nullptr;
    });
}
connx_tensor *connx_attribute_add_tensor(connx_attribute *a) {
    return guarded_ptr<connx_tensor>([&] { return H(A(a)->add_tensors()); });
}
connx_graph *connx_attribute_add_graph(connx_attribute *a) {
    return guarded_ptr<connx_graph>([&] { return H(A(a)->add_graphs()); });
}

// MARK: - Value infos and types

connx_str connx_value_info_name(const connx_value_info *v) { return str(V(v)->name()); }
connx_str connx_value_info_doc_string(const connx_value_info *v) { return str(V(v)->doc_string()); }
connx_type *connx_value_info_type(const connx_value_info *v) { return V(v)->has_type() ? H(V(v)->mutable_type()) : nullptr; }
connx_error *connx_value_info_set_strings(connx_value_info *v, connx_str name, connx_str doc_string) {
    return guarded("building a value info", [&]() -> connx_error * {
        V(v)->set_name(cpp(name));
        V(v)->set_doc_string(cpp(doc_string));
        return nullptr;
    });
}
connx_type *connx_value_info_mutable_type(connx_value_info *v) {
    return guarded_ptr<connx_type>([&] { return H(V(v)->mutable_type()); });
}

int32_t connx_type_kind(const connx_type *t) {
    switch (Y(t)->value_case()) {
        case TypeProto::kTensorType: return CONNX_TYPE_TENSOR;
        case TypeProto::kSequenceType: return CONNX_TYPE_SEQUENCE;
        case TypeProto::kMapType: return CONNX_TYPE_MAP;
        case TypeProto::kOptionalType: return CONNX_TYPE_OPTIONAL;
        case TypeProto::kSparseTensorType: return CONNX_TYPE_SPARSE_TENSOR;
        case TypeProto::kOpaqueType: return CONNX_TYPE_OPAQUE;
        default: return CONNX_TYPE_NONE;
    }
}

// The shape of a tensor or sparse tensor type, or NULL.
static const TensorShapeProto *shape_of(const TypeProto *t) {
    if (t->has_tensor_type()) return t->tensor_type().has_shape() ? &t->tensor_type().shape() : nullptr;
    if (t->has_sparse_tensor_type())
        return t->sparse_tensor_type().has_shape() ? &t->sparse_tensor_type().shape() : nullptr;
    return nullptr;
}

int32_t connx_type_elem_type(const connx_type *t) {
    if (Y(t)->has_tensor_type()) return Y(t)->tensor_type().elem_type();
    if (Y(t)->has_sparse_tensor_type()) return Y(t)->sparse_tensor_type().elem_type();
    return 0;
}
int connx_type_has_shape(const connx_type *t) { return shape_of(Y(t)) != nullptr; }
size_t connx_type_dim_count(const connx_type *t) {
    const auto *shape = shape_of(Y(t));
    return shape ? shape->dim_size() : 0;
}
void connx_type_dim(const connx_type *t, size_t i, int32_t *kind, int64_t *value, connx_str *param) {
    const auto &dim = shape_of(Y(t))->dim(static_cast<int>(i));
    *value = 0;
    *param = connx_str{nullptr, 0};
    if (dim.has_dim_value()) {
        *kind = CONNX_DIM_VALUE;
        *value = dim.dim_value();
    } else if (dim.has_dim_param()) {
        *kind = CONNX_DIM_PARAM;
        *param = str(dim.dim_param());
    } else {
        *kind = CONNX_DIM_UNKNOWN;
    }
}
connx_type *connx_type_element(const connx_type *t) {
    TypeProto *y = Y(t);
    if (y->has_sequence_type() && y->sequence_type().has_elem_type())
        return H(y->mutable_sequence_type()->mutable_elem_type());
    if (y->has_optional_type() && y->optional_type().has_elem_type())
        return H(y->mutable_optional_type()->mutable_elem_type());
    if (y->has_map_type() && y->map_type().has_value_type()) return H(y->mutable_map_type()->mutable_value_type());
    return nullptr;
}
int32_t connx_type_map_key_type(const connx_type *t) { return Y(t)->has_map_type() ? Y(t)->map_type().key_type() : 0; }

void connx_type_set_tensor(connx_type *t, int32_t elem_type, int has_shape) {
    try {
        auto *tensor = Y(t)->mutable_tensor_type();
        tensor->set_elem_type(elem_type);
        if (has_shape) tensor->mutable_shape();
    } catch (...) {
    }
}
void connx_type_add_dim_value(connx_type *t, int64_t value) {
    try {
        Y(t)->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_value(value);
    } catch (...) {
    }
}
connx_error *connx_type_add_dim_param(connx_type *t, connx_str param) {
    return guarded("building a type", [&]() -> connx_error * {
        Y(t)->mutable_tensor_type()->mutable_shape()->add_dim()->set_dim_param(cpp(param));
        return nullptr;
    });
}
void connx_type_add_dim_unknown(connx_type *t) {
    try {
        Y(t)->mutable_tensor_type()->mutable_shape()->add_dim();
    } catch (...) {
    }
}
connx_type *connx_type_set_sequence(connx_type *t) {
    return guarded_ptr<connx_type>([&] { return H(Y(t)->mutable_sequence_type()->mutable_elem_type()); });
}
connx_type *connx_type_set_optional(connx_type *t) {
    return guarded_ptr<connx_type>([&] { return H(Y(t)->mutable_optional_type()->mutable_elem_type()); });
}
connx_type *connx_type_set_map(connx_type *t, int32_t key_type) {
    return guarded_ptr<connx_type>([&] {
        auto *map = Y(t)->mutable_map_type();
        map->set_key_type(key_type);
        return H(map->mutable_value_type());
    });
}

// MARK: - Tensors

connx_str connx_tensor_name(const connx_tensor *t) { return str(T(t)->name()); }
connx_str connx_tensor_doc_string(const connx_tensor *t) { return str(T(t)->doc_string()); }
int32_t connx_tensor_data_type(const connx_tensor *t) { return T(t)->data_type(); }
size_t connx_tensor_dim_count(const connx_tensor *t) { return T(t)->dims_size(); }
const int64_t *connx_tensor_dims(const connx_tensor *t) { return T(t)->dims().data(); }
int32_t connx_tensor_data_location(const connx_tensor *t) { return T(t)->data_location(); }
int connx_tensor_has_segment(const connx_tensor *t) { return T(t)->has_segment(); }
size_t connx_tensor_external_data_count(const connx_tensor *t) { return T(t)->external_data_size(); }
void connx_tensor_external_data(const connx_tensor *t, size_t i, connx_str *key, connx_str *value) {
    const auto &entry = T(t)->external_data(static_cast<int>(i));
    *key = str(entry.key());
    *value = str(entry.value());
}
size_t connx_tensor_string_count(const connx_tensor *t) { return T(t)->string_data_size(); }
connx_str connx_tensor_string(const connx_tensor *t, size_t i) { return str(T(t)->string_data(static_cast<int>(i))); }

connx_error *connx_tensor_read_bytes(const connx_tensor *handle, connx_bytes *out) {
    *out = connx_bytes{nullptr, 0};
    const TensorProto &t = *T(handle);
    return guarded("reading a tensor", [&]() -> connx_error * {
        const std::string label = tensor_label(t);
        const int32_t type = t.data_type();
        const size_t size = element_size(type);
        if (size == 0)
            return error_with_log(label + ": element type " + std::to_string(type) +
                                  " has no fixed-size raw form (string or unknown type)");
        // Element count from the dims, refusing negative dims and products that overflow.
        uint64_t count = 1;
        for (int64_t d : t.dims()) {
            if (d < 0) return error_with_log(label + ": negative dimension " + std::to_string(d));
            if (d != 0 && count > UINT64_MAX / static_cast<uint64_t>(d))
                return error_with_log(label + ": the product of its dims overflows");
            count *= static_cast<uint64_t>(d);
        }
        if (count > SIZE_MAX / size) return error_with_log(label + ": the product of its dims overflows");
        const size_t bytes = static_cast<size_t>(count) * size;

        auto mismatch = [&](const char *field, size_t have, size_t per_element) {
            return error_with_log(label + ": dims " + std::to_string(count) + " elements need " +
                                  std::to_string(count * per_element) + " values in " + field + ", found " +
                                  std::to_string(have));
        };
        // The dims must agree with the bytes actually present before anything is allocated:
        // a tiny file must not make us reserve what its dims claim.
        if (t.has_raw_data()) {
            if (t.raw_data().size() != bytes)
                return error_with_log(label + ": raw_data holds " + std::to_string(t.raw_data().size()) +
                                      " bytes but dims need " + std::to_string(bytes));
        } else {
            size_t have = 0, per = 1;
            const char *field = "int32_data";
            switch (type) {
                case TensorProto::FLOAT: have = t.float_data_size(); field = "float_data"; break;
                case TensorProto::COMPLEX64: have = t.float_data_size(); field = "float_data"; per = 2; break;
                case TensorProto::DOUBLE: have = t.double_data_size(); field = "double_data"; break;
                case TensorProto::COMPLEX128: have = t.double_data_size(); field = "double_data"; per = 2; break;
                case TensorProto::INT64: have = t.int64_data_size(); field = "int64_data"; break;
                case TensorProto::UINT32: case TensorProto::UINT64: have = t.uint64_data_size(); field = "uint64_data"; break;
                default: have = t.int32_data_size(); break;
            }
            if (count > SIZE_MAX / per || have != count * per) return mismatch(field, have, per);
        }
        auto *data = static_cast<uint8_t *>(std::malloc(bytes ? bytes : 1));
        if (!data) return error_with_log(label + ": out of memory for " + std::to_string(bytes) + " bytes");
        connx_error *error = nullptr;

        if (t.has_raw_data()) {
            if (t.raw_data().size() != bytes)
                error = error_with_log(label + ": raw_data holds " + std::to_string(t.raw_data().size()) +
                                       " bytes but dims need " + std::to_string(bytes));
            else if (bytes)
                std::memcpy(data, t.raw_data().data(), bytes);
        } else {
            switch (type) {
                case TensorProto::FLOAT:
                    if (static_cast<size_t>(t.float_data_size()) != count) error = mismatch("float_data", t.float_data_size(), 1);
                    else copy_typed(t.float_data(), data, 4, float_bits);
                    break;
                case TensorProto::COMPLEX64:  // real and imaginary parts interleaved in float_data
                    if (static_cast<size_t>(t.float_data_size()) != count * 2) error = mismatch("float_data", t.float_data_size(), 2);
                    else copy_typed(t.float_data(), data, 4, float_bits);
                    break;
                case TensorProto::DOUBLE:
                    if (static_cast<size_t>(t.double_data_size()) != count) error = mismatch("double_data", t.double_data_size(), 1);
                    else copy_typed(t.double_data(), data, 8, double_bits);
                    break;
                case TensorProto::COMPLEX128:
                    if (static_cast<size_t>(t.double_data_size()) != count * 2) error = mismatch("double_data", t.double_data_size(), 2);
                    else copy_typed(t.double_data(), data, 8, double_bits);
                    break;
                case TensorProto::INT64:
                    if (static_cast<size_t>(t.int64_data_size()) != count) error = mismatch("int64_data", t.int64_data_size(), 1);
                    else copy_typed(t.int64_data(), data, 8, [](int64_t v) { return static_cast<uint64_t>(v); });
                    break;
                case TensorProto::UINT32: case TensorProto::UINT64:
                    if (static_cast<size_t>(t.uint64_data_size()) != count) error = mismatch("uint64_data", t.uint64_data_size(), 1);
                    else copy_typed(t.uint64_data(), data, size, [](uint64_t v) { return v; });
                    break;
                default:
                    // int32_data carries INT32 and, one element per entry, every narrower integer,
                    // BOOL, and the bit patterns of FLOAT16 / BFLOAT16.
                    if (static_cast<size_t>(t.int32_data_size()) != count) error = mismatch("int32_data", t.int32_data_size(), 1);
                    else copy_typed(t.int32_data(), data, size,
                                    [](int32_t v) { return static_cast<uint64_t>(static_cast<uint32_t>(v)); });
                    break;
            }
        }
        if (error) {
            std::free(data);
            return error;
        }
        *out = connx_bytes{data, bytes};
        return nullptr;
    });
}

void connx_tensor_release_data(connx_tensor *handle) {
    TensorProto &t = *T(handle);
    // Swapping with empty containers frees the buffers (clear() would keep their capacity).
    if (t.has_raw_data()) std::string().swap(*t.mutable_raw_data());
    google::protobuf::RepeatedField<float>().Swap(t.mutable_float_data());
    google::protobuf::RepeatedField<double>().Swap(t.mutable_double_data());
    google::protobuf::RepeatedField<int32_t>().Swap(t.mutable_int32_data());
    google::protobuf::RepeatedField<int64_t>().Swap(t.mutable_int64_data());
    google::protobuf::RepeatedField<uint64_t>().Swap(t.mutable_uint64_data());
}

connx_error *connx_tensor_set_strings(connx_tensor *t, connx_str name, connx_str doc_string) {
    return guarded("building a tensor", [&]() -> connx_error * {
        T(t)->set_name(cpp(name));
        T(t)->set_doc_string(cpp(doc_string));
        return nullptr;
    });
}
void connx_tensor_set_data_type(connx_tensor *t, int32_t data_type) { T(t)->set_data_type(data_type); }
connx_error *connx_tensor_add_dims(connx_tensor *t, const int64_t *dims, size_t count) {
    return guarded("building a tensor", [&]() -> connx_error * {
        for (size_t i = 0; i < count; ++i) T(t)->add_dims(dims[i]);
        return nullptr;
    });
}
connx_error *connx_tensor_set_raw_data(connx_tensor *t, const void *bytes, size_t length) {
    return guarded("building a tensor", [&]() -> connx_error * {
        T(t)->set_raw_data(length ? std::string(static_cast<const char *>(bytes), length) : std::string());
        return nullptr;
    });
}
connx_error *connx_tensor_add_string(connx_tensor *t, connx_str value) {
    return guarded("building a tensor", [&]() -> connx_error * {
        T(t)->add_string_data(cpp(value));
        return nullptr;
    });
}
void connx_tensor_set_data_location(connx_tensor *t, int32_t location) {
    T(t)->set_data_location(location == CONNX_DATA_EXTERNAL ? TensorProto::EXTERNAL : TensorProto::DEFAULT);
}
connx_error *connx_tensor_add_external_data(connx_tensor *t, connx_str key, connx_str value) {
    return guarded("building a tensor", [&]() -> connx_error * {
        auto *entry = T(t)->add_external_data();
        entry->set_key(cpp(key));
        entry->set_value(cpp(value));
        return nullptr;
    });
}

connx_error *connx_tensor_move_raw_to_typed_field(connx_tensor *handle) {
    TensorProto &t = *T(handle);
    return guarded("converting a tensor", [&]() -> connx_error * {
        const std::string raw = t.raw_data();
        const size_t size = element_size(t.data_type());
        if (size == 0 || raw.size() % size != 0) return error_with_log(tensor_label(t) + ": no raw form to convert");
        const auto *p = reinterpret_cast<const uint8_t *>(raw.data());
        auto load = [&](size_t offset, size_t n) {
            uint64_t v = 0;
            for (size_t b = 0; b < n; ++b) v |= static_cast<uint64_t>(p[offset + b]) << (8 * b);
            return v;
        };
        t.clear_raw_data();
        const size_t count = raw.size() / size;
        switch (t.data_type()) {
            case TensorProto::FLOAT: case TensorProto::COMPLEX64:
                for (size_t i = 0; i < raw.size() / 4; ++i) {
                    uint32_t bits = static_cast<uint32_t>(load(i * 4, 4));
                    float f;
                    std::memcpy(&f, &bits, 4);
                    t.add_float_data(f);
                }
                break;
            case TensorProto::DOUBLE: case TensorProto::COMPLEX128:
                for (size_t i = 0; i < raw.size() / 8; ++i) {
                    uint64_t bits = load(i * 8, 8);
                    double d;
                    std::memcpy(&d, &bits, 8);
                    t.add_double_data(d);
                }
                break;
            case TensorProto::INT64:
                for (size_t i = 0; i < count; ++i) t.add_int64_data(static_cast<int64_t>(load(i * 8, 8)));
                break;
            case TensorProto::UINT32: case TensorProto::UINT64:
                for (size_t i = 0; i < count; ++i) t.add_uint64_data(load(i * size, size));
                break;
            case TensorProto::INT8: case TensorProto::INT16: case TensorProto::INT32:
                // Signed types are stored sign-extended, as ONNX's Python helper does.
                for (size_t i = 0; i < count; ++i) {
                    uint64_t v = load(i * size, size);
                    int shift = static_cast<int>(64 - 8 * size);
                    t.add_int32_data(static_cast<int32_t>(static_cast<int64_t>(v << shift) >> shift));
                }
                break;
            default:  // uint8, uint16, bool, float16, bfloat16: zero-extended
                for (size_t i = 0; i < count; ++i) t.add_int32_data(static_cast<int32_t>(load(i * size, size)));
                break;
        }
        return nullptr;
    });
}

connx_error *connx_tensor_file_parse(const void *bytes, size_t length, connx_tensor_file **out) {
    *out = nullptr;
    return guarded("parsing the tensor", [&]() -> connx_error * {
        if (length > static_cast<size_t>(INT_MAX))
            return error_with_log("the file is larger than protobuf's 2 GB limit for one message");
        auto *file = new connx_tensor_file();
        if (!parse_large(file->proto, bytes, length)) {
            delete file;
            return error_with_log("the bytes do not parse as an ONNX TensorProto (truncated, text, or another format)");
        }
        *out = file;
        return nullptr;
    });
}
connx_error *connx_tensor_file_new(connx_tensor_file **out) {
    *out = nullptr;
    return guarded("creating a tensor", [&]() -> connx_error * {
        *out = new connx_tensor_file();
        return nullptr;
    });
}
void connx_tensor_file_free(connx_tensor_file *file) { delete file; }
connx_tensor *connx_tensor_file_tensor(connx_tensor_file *file) { return H(&file->proto); }
connx_error *connx_tensor_file_serialize(const connx_tensor_file *file, connx_bytes *out) {
    *out = connx_bytes{nullptr, 0};
    return guarded("serializing the tensor", [&] { return serialize_message(file->proto, out, "serializing the tensor"); });
}

}  // extern "C"
