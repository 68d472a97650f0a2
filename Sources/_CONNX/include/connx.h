// Plain C API over libonnx / libprotobuf: parse, read, build, serialize, check and infer ONNX models.
//
// Ownership: a `connx_model` and a `connx_tensor_file` own their protobuf message; every other
// handle (graph, node, attribute, tensor, value info, type) is a borrowed pointer into its owner,
// valid until the owner is freed or the repeated field it lives in grows.
// Errors: functions that can fail return a `connx_error *` (NULL on success) that the caller frees
// with `connx_error_free`. No C++ exception, abort or protobuf log line crosses this API.
// Strings are (pointer, length) pairs because ONNX names may contain NUL bytes.
#ifndef CONNX_H
#define CONNX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct connx_model connx_model;
typedef struct connx_tensor_file connx_tensor_file;
typedef struct connx_graph connx_graph;
typedef struct connx_node connx_node;
typedef struct connx_attribute connx_attribute;
typedef struct connx_tensor connx_tensor;
typedef struct connx_value_info connx_value_info;
typedef struct connx_type connx_type;

/// A borrowed byte string (not NUL-terminated).
typedef struct connx_str {
    const char *data;
    size_t length;
} connx_str;

/// A malloc'ed byte buffer owned by the caller; release with `connx_bytes_free`.
typedef struct connx_bytes {
    uint8_t *data;
    size_t length;
} connx_bytes;

/// An error: a NUL-terminated message. Release with `connx_error_free`.
typedef struct connx_error {
    char *message;
} connx_error;

void connx_error_free(connx_error *error);
void connx_bytes_free(connx_bytes bytes);

// MARK: - Models

/// Parses a serialized ModelProto (no 64 MB limit; protobuf's own 2 GB limit applies).
connx_error *connx_model_parse(const void *bytes, size_t length, connx_model **out);
/// A new, empty model with an empty graph.
connx_error *connx_model_new(connx_model **out);
void connx_model_free(connx_model *model);
/// Serializes the model; fails above protobuf's 2 GB message limit.
connx_error *connx_model_serialize(const connx_model *model, connx_bytes *out);
/// Runs `onnx::checker::check_model`, then strict shape inference (what ONNX's `full_check`
/// does). NULL when the model is valid, otherwise the checker's message.
connx_error *connx_model_check(const connx_model *model);
/// Runs `onnx::shape_inference::InferShapes` in strict mode on a copy; `*out` is the inferred model.
connx_error *connx_model_infer_shapes(const connx_model *model, connx_model **out);
/// The highest opset version libonnx knows for `domain` ("" = ai.onnx), or -1 if the domain is unknown.
int64_t connx_known_opset_max(connx_str domain);

int64_t connx_model_ir_version(const connx_model *m);
connx_str connx_model_producer_name(const connx_model *m);
connx_str connx_model_producer_version(const connx_model *m);
connx_str connx_model_domain(const connx_model *m);
int64_t connx_model_model_version(const connx_model *m);
connx_str connx_model_doc_string(const connx_model *m);
size_t connx_model_opset_count(const connx_model *m);
void connx_model_opset(const connx_model *m, size_t i, connx_str *domain, int64_t *version);
size_t connx_model_metadata_count(const connx_model *m);
void connx_model_metadata(const connx_model *m, size_t i, connx_str *key, connx_str *value);
size_t connx_model_function_count(const connx_model *m);
int connx_model_has_graph(const connx_model *m);
/// The model's graph (created empty when writing if absent).
connx_graph *connx_model_graph(connx_model *m);

connx_error *connx_model_set_strings(connx_model *m, connx_str producer_name, connx_str producer_version,
                                     connx_str domain, connx_str doc_string);
void connx_model_set_versions(connx_model *m, int64_t ir_version, int64_t model_version);
connx_error *connx_model_add_opset(connx_model *m, connx_str domain, int64_t version);
connx_error *connx_model_add_metadata(connx_model *m, connx_str key, connx_str value);

// MARK: - Graphs

connx_str connx_graph_name(const connx_graph *g);
connx_str connx_graph_doc_string(const connx_graph *g);
size_t connx_graph_node_count(const connx_graph *g);
connx_node *connx_graph_node(const connx_graph *g, size_t i);
size_t connx_graph_input_count(const connx_graph *g);
connx_value_info *connx_graph_input(const connx_graph *g, size_t i);
size_t connx_graph_output_count(const connx_graph *g);
connx_value_info *connx_graph_output(const connx_graph *g, size_t i);
size_t connx_graph_value_info_count(const connx_graph *g);
connx_value_info *connx_graph_value_info(const connx_graph *g, size_t i);
size_t connx_graph_initializer_count(const connx_graph *g);
connx_tensor *connx_graph_initializer(const connx_graph *g, size_t i);
size_t connx_graph_sparse_initializer_count(const connx_graph *g);

connx_error *connx_graph_set_strings(connx_graph *g, connx_str name, connx_str doc_string);
/// The `add` functions append an empty element and return it for filling in (NULL on allocation failure).
connx_node *connx_graph_add_node(connx_graph *g);
connx_value_info *connx_graph_add_input(connx_graph *g);
connx_value_info *connx_graph_add_output(connx_graph *g);
connx_value_info *connx_graph_add_value_info(connx_graph *g);
connx_tensor *connx_graph_add_initializer(connx_graph *g);

// MARK: - Nodes

connx_str connx_node_name(const connx_node *n);
connx_str connx_node_op_type(const connx_node *n);
connx_str connx_node_domain(const connx_node *n);
connx_str connx_node_doc_string(const connx_node *n);
size_t connx_node_input_count(const connx_node *n);
connx_str connx_node_input(const connx_node *n, size_t i);
size_t connx_node_output_count(const connx_node *n);
connx_str connx_node_output(const connx_node *n, size_t i);
size_t connx_node_attribute_count(const connx_node *n);
connx_attribute *connx_node_attribute(const connx_node *n, size_t i);

connx_error *connx_node_set_strings(connx_node *n, connx_str name, connx_str op_type, connx_str domain,
                                    connx_str doc_string);
connx_error *connx_node_add_input(connx_node *n, connx_str name);
connx_error *connx_node_add_output(connx_node *n, connx_str name);
connx_attribute *connx_node_add_attribute(connx_node *n);

// MARK: - Attributes

/// Attribute kinds, numbered as `AttributeProto.AttributeType`.
enum {
    CONNX_ATTR_UNDEFINED = 0, CONNX_ATTR_FLOAT = 1, CONNX_ATTR_INT = 2, CONNX_ATTR_STRING = 3,
    CONNX_ATTR_TENSOR = 4, CONNX_ATTR_GRAPH = 5, CONNX_ATTR_FLOATS = 6, CONNX_ATTR_INTS = 7,
    CONNX_ATTR_STRINGS = 8, CONNX_ATTR_TENSORS = 9, CONNX_ATTR_GRAPHS = 10,
    CONNX_ATTR_SPARSE_TENSOR = 11, CONNX_ATTR_SPARSE_TENSORS = 12,
    CONNX_ATTR_TYPE_PROTO = 13, CONNX_ATTR_TYPE_PROTOS = 14,
};

connx_str connx_attribute_name(const connx_attribute *a);
connx_str connx_attribute_doc_string(const connx_attribute *a);
connx_str connx_attribute_ref_attr_name(const connx_attribute *a);
int32_t connx_attribute_type(const connx_attribute *a);
float connx_attribute_f(const connx_attribute *a);
int64_t connx_attribute_i(const connx_attribute *a);
connx_str connx_attribute_s(const connx_attribute *a);
/// NULL when the attribute has no tensor / graph.
connx_tensor *connx_attribute_t(const connx_attribute *a);
connx_graph *connx_attribute_g(const connx_attribute *a);
size_t connx_attribute_floats_count(const connx_attribute *a);
const float *connx_attribute_floats(const connx_attribute *a);
size_t connx_attribute_ints_count(const connx_attribute *a);
const int64_t *connx_attribute_ints(const connx_attribute *a);
size_t connx_attribute_strings_count(const connx_attribute *a);
connx_str connx_attribute_string(const connx_attribute *a, size_t i);
size_t connx_attribute_tensors_count(const connx_attribute *a);
connx_tensor *connx_attribute_tensor(const connx_attribute *a, size_t i);
size_t connx_attribute_graphs_count(const connx_attribute *a);
connx_graph *connx_attribute_graph(const connx_attribute *a, size_t i);

connx_error *connx_attribute_set_strings(connx_attribute *a, connx_str name, connx_str doc_string,
                                         connx_str ref_attr_name);
void connx_attribute_set_type(connx_attribute *a, int32_t type);
void connx_attribute_set_f(connx_attribute *a, float value);
void connx_attribute_set_i(connx_attribute *a, int64_t value);
connx_error *connx_attribute_set_s(connx_attribute *a, connx_str value);
connx_tensor *connx_attribute_mutable_t(connx_attribute *a);
connx_graph *connx_attribute_mutable_g(connx_attribute *a);
connx_error *connx_attribute_add_floats(connx_attribute *a, const float *values, size_t count);
connx_error *connx_attribute_add_ints(connx_attribute *a, const int64_t *values, size_t count);
connx_error *connx_attribute_add_string(connx_attribute *a, connx_str value);
connx_tensor *connx_attribute_add_tensor(connx_attribute *a);
connx_graph *connx_attribute_add_graph(connx_attribute *a);

// MARK: - Value infos and types

connx_str connx_value_info_name(const connx_value_info *v);
connx_str connx_value_info_doc_string(const connx_value_info *v);
/// NULL when the value info carries no type.
connx_type *connx_value_info_type(const connx_value_info *v);
connx_error *connx_value_info_set_strings(connx_value_info *v, connx_str name, connx_str doc_string);
connx_type *connx_value_info_mutable_type(connx_value_info *v);

/// Type kinds, following the `TypeProto.value` oneof.
enum {
    CONNX_TYPE_NONE = 0, CONNX_TYPE_TENSOR = 1, CONNX_TYPE_SEQUENCE = 2, CONNX_TYPE_MAP = 3,
    CONNX_TYPE_OPTIONAL = 4, CONNX_TYPE_SPARSE_TENSOR = 5, CONNX_TYPE_OPAQUE = 6,
};
/// Dimension kinds, following the `TensorShapeProto.Dimension.value` oneof.
enum { CONNX_DIM_UNKNOWN = 0, CONNX_DIM_VALUE = 1, CONNX_DIM_PARAM = 2 };

int32_t connx_type_kind(const connx_type *t);
/// Tensor or sparse tensor element type (0 = undefined).
int32_t connx_type_elem_type(const connx_type *t);
int connx_type_has_shape(const connx_type *t);
size_t connx_type_dim_count(const connx_type *t);
void connx_type_dim(const connx_type *t, size_t i, int32_t *kind, int64_t *value, connx_str *param);
/// Element type of a sequence / optional, value type of a map; NULL when absent.
connx_type *connx_type_element(const connx_type *t);
int32_t connx_type_map_key_type(const connx_type *t);

void connx_type_set_tensor(connx_type *t, int32_t elem_type, int has_shape);
void connx_type_add_dim_value(connx_type *t, int64_t value);
connx_error *connx_type_add_dim_param(connx_type *t, connx_str param);
void connx_type_add_dim_unknown(connx_type *t);
/// Makes `t` a sequence / optional / map (with `key_type`) and returns its element (value) type.
connx_type *connx_type_set_sequence(connx_type *t);
connx_type *connx_type_set_optional(connx_type *t);
connx_type *connx_type_set_map(connx_type *t, int32_t key_type);

// MARK: - Tensors

/// `TensorProto.DataLocation`.
enum { CONNX_DATA_DEFAULT = 0, CONNX_DATA_EXTERNAL = 1 };

connx_str connx_tensor_name(const connx_tensor *t);
connx_str connx_tensor_doc_string(const connx_tensor *t);
int32_t connx_tensor_data_type(const connx_tensor *t);
size_t connx_tensor_dim_count(const connx_tensor *t);
const int64_t *connx_tensor_dims(const connx_tensor *t);
int32_t connx_tensor_data_location(const connx_tensor *t);
int connx_tensor_has_segment(const connx_tensor *t);
size_t connx_tensor_external_data_count(const connx_tensor *t);
void connx_tensor_external_data(const connx_tensor *t, size_t i, connx_str *key, connx_str *value);
size_t connx_tensor_string_count(const connx_tensor *t);
connx_str connx_tensor_string(const connx_tensor *t, size_t i);
/// The tensor's numbers as ONNX `raw_data` little-endian bytes, whichever field the file used
/// (raw_data or float_data / int32_data / int64_data / double_data / uint64_data). Fails, naming
/// the tensor, when the element count disagrees with the dims, the dims are negative or overflow,
/// or the data type is one this layer does not know. Not for string or external tensors.
connx_error *connx_tensor_read_bytes(const connx_tensor *t, connx_bytes *out);
/// Frees a tensor's inline data (raw_data and the typed fields) once it has been read, so a
/// model's weights are not held twice while it is converted. Dims, type and name stay.
void connx_tensor_release_data(connx_tensor *t);
/// How deeply protobuf messages may nest when parsing a model (protobuf's own default is 100):
/// room for 64 levels of subgraphs (three message levels each) plus their types.
enum { connx_message_nesting_limit = 256 };

connx_error *connx_tensor_set_strings(connx_tensor *t, connx_str name, connx_str doc_string);
void connx_tensor_set_data_type(connx_tensor *t, int32_t data_type);
connx_error *connx_tensor_add_dims(connx_tensor *t, const int64_t *dims, size_t count);
connx_error *connx_tensor_set_raw_data(connx_tensor *t, const void *bytes, size_t length);
connx_error *connx_tensor_add_string(connx_tensor *t, connx_str value);
void connx_tensor_set_data_location(connx_tensor *t, int32_t location);
connx_error *connx_tensor_add_external_data(connx_tensor *t, connx_str key, connx_str value);
/// Moves `raw_data` into the typed field ONNX defines for the data type (float_data,
/// int32_data, ...), as older exporters write tensors. Lets tests cover the typed-field reader.
connx_error *connx_tensor_move_raw_to_typed_field(connx_tensor *t);

/// A standalone TensorProto (an ONNX test-data `.pb` file).
connx_error *connx_tensor_file_parse(const void *bytes, size_t length, connx_tensor_file **out);
connx_error *connx_tensor_file_new(connx_tensor_file **out);
void connx_tensor_file_free(connx_tensor_file *file);
connx_tensor *connx_tensor_file_tensor(connx_tensor_file *file);
connx_error *connx_tensor_file_serialize(const connx_tensor_file *file, connx_bytes *out);

#ifdef __cplusplus
}
#endif

#endif
