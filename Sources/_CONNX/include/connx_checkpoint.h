// Plain C API over the trainer's checkpoint message (proto/checkpoint.proto): build, parse, serialize. Files are
// read and written (atomically) by the Swift side.
//
// Tensors cross as (name, ONNX data type, dims, raw little-endian bytes); inside the message each
// is a serialized onnx.TensorProto. Errors are `connx_error *` values (see connx.h); no C++
// exception crosses this API. Pointers returned by getters borrow from the checkpoint handle and
// stay valid until it is freed or modified.
#ifndef CONNX_CHECKPOINT_H
#define CONNX_CHECKPOINT_H

#include "connx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct connx_checkpoint connx_checkpoint;

/// The scalar fields of a checkpoint (everything but lists).
typedef struct connx_checkpoint_header {
    uint32_t format_version;
    int32_t width;
    int32_t num_classes;
    int32_t input_size;
    double beta;
    int32_t epochs_completed;
    double learning_rate;
    float best_accuracy;
    int32_t best_epoch;
    uint64_t seed;
    uint64_t data_seed;
    /// xoshiro256** state; all zero when absent.
    uint64_t generator_state[4];
    double initial_learning_rate;
    double momentum;
    double weight_decay;
    int32_t step_size;
    double gamma;
    int32_t batch_size;
    int32_t epochs;
    int32_t augment;
    int32_t shuffle;
    /// Mid-epoch position: steps taken in epoch `epochs_completed` and the meters' state.
    int32_t step_in_epoch;
    double loss_value;
    double loss_sum;
    int64_t loss_count;
    float accuracy_value;
    float accuracy_sum;
    int64_t accuracy_count;
    /// Bytes of the log file when the checkpoint was written (0: unknown).
    uint64_t log_length;
} connx_checkpoint_header;

typedef struct connx_checkpoint_epoch {
    int32_t epoch;
    double learning_rate;
    double train_loss;
    float train_accuracy;
    double test_loss;
    float test_accuracy;
    double seconds;
} connx_checkpoint_epoch;

/// Which tensor list: the PyTorch state_dict, or SGD momentum buffers.
typedef enum connx_checkpoint_list {
    CONNX_CHECKPOINT_STATE_DICT = 0,
    CONNX_CHECKPOINT_MOMENTUM = 1,
} connx_checkpoint_list;

/// A tensor as stored: `data_type` is ONNX's TensorProto.DataType (1 float, 7 int64).
typedef struct connx_checkpoint_tensor {
    connx_str name;
    int32_t data_type;
    const int64_t *dims;
    size_t rank;
    connx_str raw;
} connx_checkpoint_tensor;

connx_error *connx_checkpoint_new(connx_checkpoint **out);
void connx_checkpoint_free(connx_checkpoint *checkpoint);

/// Parses a serialized checkpoint and checks every stored tensor (a TensorProto with a name, a
/// float or int64 type, and raw bytes matching its dims).
connx_error *connx_checkpoint_parse(const void *bytes, size_t length, connx_checkpoint **out);
connx_error *connx_checkpoint_serialize(const connx_checkpoint *checkpoint, connx_bytes *out);

void connx_checkpoint_get_header(const connx_checkpoint *checkpoint, connx_checkpoint_header *out);
void connx_checkpoint_set_header(connx_checkpoint *checkpoint, const connx_checkpoint_header *header);

size_t connx_checkpoint_class_name_count(const connx_checkpoint *checkpoint);
connx_str connx_checkpoint_class_name(const connx_checkpoint *checkpoint, size_t i);
void connx_checkpoint_add_class_name(connx_checkpoint *checkpoint, connx_str name);

size_t connx_checkpoint_epoch_count(const connx_checkpoint *checkpoint);
void connx_checkpoint_get_epoch(const connx_checkpoint *checkpoint, size_t i, connx_checkpoint_epoch *out);
void connx_checkpoint_add_epoch(connx_checkpoint *checkpoint, const connx_checkpoint_epoch *epoch);

size_t connx_checkpoint_tensor_count(const connx_checkpoint *checkpoint, connx_checkpoint_list list);
/// The i-th tensor of `list`; fails if `i` is out of range.
connx_error *connx_checkpoint_get_tensor(const connx_checkpoint *checkpoint, connx_checkpoint_list list,
                                         size_t i, connx_checkpoint_tensor *out);
/// Appends a tensor (raw bytes must match dims and type: float or int64).
connx_error *connx_checkpoint_add_tensor(connx_checkpoint *checkpoint, connx_checkpoint_list list,
                                         const connx_checkpoint_tensor *tensor);

/// The checkpoint in pieces, for a writer that streams its tensors instead of holding the whole
/// message: `head` holds the fields numbered below the state_dict's (10), `tail` those above the
/// momentum buffers' (11), both without the handle's own tensors. head, then each state_dict entry
/// and each momentum entry from `connx_checkpoint_encode_tensor`, then tail is byte for byte what
/// `connx_checkpoint_serialize` gives for the same tensors (protobuf writes fields in number order).
connx_error *connx_checkpoint_serialize_frame(const connx_checkpoint *checkpoint, connx_bytes *head, connx_bytes *tail);
/// One tensor as an entry of `list` in the message: its field key, its length and the serialized
/// TensorProto, after the checks of `connx_checkpoint_add_tensor`.
connx_error *connx_checkpoint_encode_tensor(connx_checkpoint_list list, const connx_checkpoint_tensor *tensor,
                                            connx_bytes *out);

#ifdef __cplusplus
}
#endif

#endif
