// The checkpoint C API: manet::Checkpoint (proto/checkpoint.proto) with tensors as onnx.TensorProto.

#include "connx_checkpoint.h"
#include "connx_errors.h"

#include "checkpoint.pb.h"
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <onnx/onnx_pb.h>

#include <memory>
#include <string>
#include <vector>

struct connx_checkpoint {
    manet::Checkpoint message;
    // Tensors live decoded here (so getters can hand out borrowed pointers) and are encoded
    // into the message's bytes fields only when serializing.
    std::vector<onnx::TensorProto> state_dict;
    std::vector<onnx::TensorProto> momentum;
};

using namespace connx_detail;

namespace {

constexpr uint32_t kFormatVersion = 1;

std::vector<onnx::TensorProto> &list_of(connx_checkpoint *c, connx_checkpoint_list list) {
    return list == CONNX_CHECKPOINT_MOMENTUM ? c->momentum : c->state_dict;
}

const std::vector<onnx::TensorProto> &list_of(const connx_checkpoint *c, connx_checkpoint_list list) {
    return list == CONNX_CHECKPOINT_MOMENTUM ? c->momentum : c->state_dict;
}

/// The TensorProto of a tensor handed over by Swift (raw bytes copied), not yet validated.
onnx::TensorProto tensor_proto(const connx_checkpoint_tensor *tensor) {
    onnx::TensorProto t;
    t.set_name(std::string(tensor->name.data, tensor->name.length));
    t.set_data_type(tensor->data_type);
    for (size_t k = 0; k < tensor->rank; k++) t.add_dims(tensor->dims[k]);
    t.set_raw_data(std::string(tensor->raw.data, tensor->raw.length));
    return t;
}

/// Empty when `t` is a tensor this format stores, else why not.
std::string validate_tensor(const onnx::TensorProto &t) {
    if (t.name().empty()) return "a tensor has no name";
    size_t element_size = 0;
    if (t.data_type() == onnx::TensorProto::FLOAT) element_size = 4;
    else if (t.data_type() == onnx::TensorProto::INT64) element_size = 8;
    else return "tensor '" + t.name() + "' has data type " + std::to_string(t.data_type()) + " (only float and int64 are stored)";
    if (t.has_data_location() && t.data_location() == onnx::TensorProto::EXTERNAL)
        return "tensor '" + t.name() + "' refers to external data, which checkpoints do not use";
    unsigned __int128 count = 1;
    for (int64_t d : t.dims()) {
        if (d < 0) return "tensor '" + t.name() + "' has a negative dim";
        count *= static_cast<unsigned __int128>(d);
        if (count > (static_cast<unsigned __int128>(1) << 62)) return "tensor '" + t.name() + "' is too large";
    }
    if (static_cast<unsigned __int128>(t.raw_data().size()) != count * element_size)
        return "tensor '" + t.name() + "' holds " + std::to_string(t.raw_data().size()) + " bytes, its dims need " +
               std::to_string(static_cast<unsigned long long>(count * element_size));
    return "";
}

}  // namespace

extern "C" {

connx_error *connx_checkpoint_new(connx_checkpoint **out) {
    *out = nullptr;
    return guarded("creating a checkpoint", [&]() -> connx_error * {
        *out = new connx_checkpoint();
        (*out)->message.set_format_version(kFormatVersion);
        return nullptr;
    });
}

void connx_checkpoint_free(connx_checkpoint *checkpoint) { delete checkpoint; }

connx_error *connx_checkpoint_parse(const void *bytes, size_t length, connx_checkpoint **out) {
    *out = nullptr;
    return guarded("parsing the checkpoint", [&]() -> connx_error * {
        if (length > static_cast<size_t>(INT32_MAX)) return make_error("the checkpoint is larger than 2 GB");
        auto c = std::unique_ptr<connx_checkpoint>(new connx_checkpoint());
        if (!c->message.ParseFromArray(bytes, static_cast<int>(length)))
            return make_error("the bytes are not a manet checkpoint (protobuf parse failed)");
        if (c->message.format_version() != kFormatVersion)
            return make_error("format version " + std::to_string(c->message.format_version()) +
                                    " is not supported (this build reads version " + std::to_string(kFormatVersion) + ")");
        auto decode = [&](const google::protobuf::RepeatedPtrField<std::string> &field,
                          std::vector<onnx::TensorProto> &into, const char *what) -> std::string {
            for (int i = 0; i < field.size(); i++) {
                onnx::TensorProto t;
                if (!t.ParseFromString(field.Get(i)))
                    return std::string(what) + " entry " + std::to_string(i) + " is not a TensorProto";
                std::string problem = validate_tensor(t);
                if (!problem.empty()) return std::string(what) + ": " + problem;
                into.push_back(std::move(t));
            }
            return "";
        };
        std::string problem = decode(c->message.state_dict(), c->state_dict, "state_dict");
        if (problem.empty()) problem = decode(c->message.momentum_buffers(), c->momentum, "momentum_buffers");
        if (!problem.empty()) return make_error(problem);
        c->message.clear_state_dict();
        c->message.clear_momentum_buffers();
        *out = c.release();
        return nullptr;
    });
}

connx_error *connx_checkpoint_serialize(const connx_checkpoint *checkpoint, connx_bytes *out) {
    out->data = nullptr;
    out->length = 0;
    return guarded("serializing the checkpoint", [&]() -> connx_error * {
        manet::Checkpoint message = checkpoint->message;
        for (const auto &t : checkpoint->state_dict) message.add_state_dict(t.SerializeAsString());
        for (const auto &t : checkpoint->momentum) message.add_momentum_buffers(t.SerializeAsString());
        size_t size = message.ByteSizeLong();
        if (size > static_cast<size_t>(INT32_MAX)) return make_error("the checkpoint exceeds protobuf's 2 GB limit");
        auto *data = static_cast<uint8_t *>(std::malloc(size ? size : 1));
        if (!data) return make_error("out of memory");
        if (!message.SerializeToArray(data, static_cast<int>(size))) {
            std::free(data);
            return make_error("protobuf serialization failed");
        }
        out->data = data;
        out->length = size;
        return nullptr;
    });
}

connx_error *connx_checkpoint_serialize_frame(const connx_checkpoint *checkpoint, connx_bytes *head, connx_bytes *tail) {
    *head = connx_bytes{nullptr, 0};
    *tail = connx_bytes{nullptr, 0};
    return guarded("serializing the checkpoint", [&]() -> connx_error * {
        // The handle's message holds no tensors (they live in its vectors): its serialization is
        // the frame, cut before the first field numbered above the momentum buffers.
        std::string bytes = checkpoint->message.SerializeAsString();
        using google::protobuf::internal::WireFormatLite;
        google::protobuf::io::CodedInputStream input(reinterpret_cast<const uint8_t *>(bytes.data()),
                                                     static_cast<int>(bytes.size()));
        size_t cut = bytes.size();
        while (true) {
            size_t before = static_cast<size_t>(input.CurrentPosition());
            uint32_t tag = input.ReadTag();
            if (tag == 0) break;
            if (WireFormatLite::GetTagFieldNumber(tag) > manet::Checkpoint::kMomentumBuffersFieldNumber) {
                cut = before;
                break;
            }
            if (!WireFormatLite::SkipField(&input, tag)) return make_error("the checkpoint's own serialization does not parse");
        }
        auto copy = [](const char *data, size_t length, connx_bytes *out) -> bool {
            auto *p = static_cast<uint8_t *>(std::malloc(length ? length : 1));
            if (!p) return false;
            if (length) std::memcpy(p, data, length);
            *out = connx_bytes{p, length};
            return true;
        };
        if (!copy(bytes.data(), cut, head)) return make_error("out of memory");
        if (!copy(bytes.data() + cut, bytes.size() - cut, tail)) {
            connx_bytes_free(*head);
            *head = connx_bytes{nullptr, 0};
            return make_error("out of memory");
        }
        return nullptr;
    });
}

connx_error *connx_checkpoint_encode_tensor(connx_checkpoint_list list, const connx_checkpoint_tensor *tensor,
                                            connx_bytes *out) {
    *out = connx_bytes{nullptr, 0};
    return guarded("encoding a checkpoint tensor", [&]() -> connx_error * {
        onnx::TensorProto t = tensor_proto(tensor);
        std::string problem = validate_tensor(t);
        if (!problem.empty()) return make_error(problem);
        using google::protobuf::internal::WireFormatLite;
        using google::protobuf::io::CodedOutputStream;
        int field = list == CONNX_CHECKPOINT_MOMENTUM ? manet::Checkpoint::kMomentumBuffersFieldNumber
                                                      : manet::Checkpoint::kStateDictFieldNumber;
        uint32_t key = WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
        size_t size = t.ByteSizeLong();
        if (size > static_cast<size_t>(INT32_MAX)) return make_error("tensor '" + t.name() + "' exceeds protobuf's 2 GB limit");
        size_t prefix = CodedOutputStream::VarintSize32(key) + CodedOutputStream::VarintSize32(static_cast<uint32_t>(size));
        auto *data = static_cast<uint8_t *>(std::malloc(prefix + size));
        if (!data) return make_error("out of memory");
        uint8_t *p = CodedOutputStream::WriteVarint32ToArray(key, data);
        p = CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(size), p);
        if (!t.SerializeToArray(p, static_cast<int>(size))) {
            std::free(data);
            return make_error("protobuf serialization failed");
        }
        *out = connx_bytes{data, prefix + size};
        return nullptr;
    });
}

void connx_checkpoint_get_header(const connx_checkpoint *c, connx_checkpoint_header *h) {
    const manet::Checkpoint &m = c->message;
    std::memset(h, 0, sizeof *h);
    h->format_version = m.format_version();
    h->width = m.width();
    h->num_classes = m.num_classes();
    h->input_size = m.input_size();
    h->beta = m.beta();
    h->epochs_completed = m.epochs_completed();
    h->learning_rate = m.learning_rate();
    h->best_accuracy = m.best_accuracy();
    h->best_epoch = m.best_epoch();
    h->seed = m.random().seed();
    h->data_seed = m.random().data_seed();
    for (int i = 0; i < 4 && i < m.random().generator_state_size(); i++) h->generator_state[i] = m.random().generator_state(i);
    h->initial_learning_rate = m.recipe().initial_learning_rate();
    h->momentum = m.recipe().momentum();
    h->weight_decay = m.recipe().weight_decay();
    h->step_size = m.recipe().step_size();
    h->gamma = m.recipe().gamma();
    h->batch_size = m.recipe().batch_size();
    h->epochs = m.recipe().epochs();
    h->augment = m.recipe().augment() ? 1 : 0;
    h->shuffle = m.recipe().shuffle() ? 1 : 0;
    const manet::EpochPosition &p = m.position();
    h->step_in_epoch = p.step_in_epoch();
    h->loss_value = p.loss_value();
    h->loss_sum = p.loss_sum();
    h->loss_count = p.loss_count();
    h->accuracy_value = p.accuracy_value();
    h->accuracy_sum = p.accuracy_sum();
    h->accuracy_count = p.accuracy_count();
    h->log_length = m.log_length();
}

void connx_checkpoint_set_header(connx_checkpoint *c, const connx_checkpoint_header *h) {
    manet::Checkpoint &m = c->message;
    m.set_format_version(kFormatVersion);
    m.set_width(h->width);
    m.set_num_classes(h->num_classes);
    m.set_input_size(h->input_size);
    m.set_beta(h->beta);
    m.set_epochs_completed(h->epochs_completed);
    m.set_learning_rate(h->learning_rate);
    m.set_best_accuracy(h->best_accuracy);
    m.set_best_epoch(h->best_epoch);
    auto *random = m.mutable_random();
    random->set_seed(h->seed);
    random->set_data_seed(h->data_seed);
    random->clear_generator_state();
    for (int i = 0; i < 4; i++) random->add_generator_state(h->generator_state[i]);
    auto *recipe = m.mutable_recipe();
    recipe->set_initial_learning_rate(h->initial_learning_rate);
    recipe->set_momentum(h->momentum);
    recipe->set_weight_decay(h->weight_decay);
    recipe->set_step_size(h->step_size);
    recipe->set_gamma(h->gamma);
    recipe->set_batch_size(h->batch_size);
    recipe->set_epochs(h->epochs);
    recipe->set_augment(h->augment != 0);
    recipe->set_shuffle(h->shuffle != 0);
    auto *p = m.mutable_position();
    p->set_step_in_epoch(h->step_in_epoch);
    p->set_loss_value(h->loss_value);
    p->set_loss_sum(h->loss_sum);
    p->set_loss_count(h->loss_count);
    p->set_accuracy_value(h->accuracy_value);
    p->set_accuracy_sum(h->accuracy_sum);
    p->set_accuracy_count(h->accuracy_count);
    m.set_log_length(h->log_length);
}

size_t connx_checkpoint_class_name_count(const connx_checkpoint *c) {
    return static_cast<size_t>(c->message.class_names_size());
}

connx_str connx_checkpoint_class_name(const connx_checkpoint *c, size_t i) {
    if (i >= static_cast<size_t>(c->message.class_names_size())) return connx_str{"", 0};
    const std::string &s = c->message.class_names(static_cast<int>(i));
    return connx_str{s.data(), s.size()};
}

void connx_checkpoint_add_class_name(connx_checkpoint *c, connx_str name) {
    try {
        c->message.add_class_names(std::string(name.data, name.length));
    } catch (...) {
        // Out of memory while appending a short string: the caller's next serialize reports it.
    }
}

size_t connx_checkpoint_epoch_count(const connx_checkpoint *c) {
    return static_cast<size_t>(c->message.history_size());
}

void connx_checkpoint_get_epoch(const connx_checkpoint *c, size_t i, connx_checkpoint_epoch *out) {
    std::memset(out, 0, sizeof *out);
    if (i >= static_cast<size_t>(c->message.history_size())) return;
    const manet::EpochRecord &r = c->message.history(static_cast<int>(i));
    out->epoch = r.epoch();
    out->learning_rate = r.learning_rate();
    out->train_loss = r.train_loss();
    out->train_accuracy = r.train_accuracy();
    out->test_loss = r.test_loss();
    out->test_accuracy = r.test_accuracy();
    out->seconds = r.seconds();
}

void connx_checkpoint_add_epoch(connx_checkpoint *c, const connx_checkpoint_epoch *e) {
    try {
        manet::EpochRecord *r = c->message.add_history();
        r->set_epoch(e->epoch);
        r->set_learning_rate(e->learning_rate);
        r->set_train_loss(e->train_loss);
        r->set_train_accuracy(e->train_accuracy);
        r->set_test_loss(e->test_loss);
        r->set_test_accuracy(e->test_accuracy);
        r->set_seconds(e->seconds);
    } catch (...) {
    }
}

size_t connx_checkpoint_tensor_count(const connx_checkpoint *c, connx_checkpoint_list list) {
    return list_of(c, list).size();
}

connx_error *connx_checkpoint_get_tensor(const connx_checkpoint *c, connx_checkpoint_list list, size_t i,
                                         connx_checkpoint_tensor *out) {
    std::memset(out, 0, sizeof *out);
    const auto &tensors = list_of(c, list);
    if (i >= tensors.size())
        return make_error("tensor index " + std::to_string(i) + " out of range (" + std::to_string(tensors.size()) + " tensors)");
    const onnx::TensorProto &t = tensors[i];
    out->name = connx_str{t.name().data(), t.name().size()};
    out->data_type = t.data_type();
    out->dims = t.dims().data();
    out->rank = static_cast<size_t>(t.dims_size());
    out->raw = connx_str{t.raw_data().data(), t.raw_data().size()};
    return nullptr;
}

connx_error *connx_checkpoint_add_tensor(connx_checkpoint *c, connx_checkpoint_list list,
                                         const connx_checkpoint_tensor *tensor) {
    return guarded("adding a tensor to the checkpoint", [&]() -> connx_error * {
        onnx::TensorProto t = tensor_proto(tensor);
        std::string problem = validate_tensor(t);
        if (!problem.empty()) return make_error(problem);
        list_of(c, list).push_back(std::move(t));
        return nullptr;
    });
}

}  // extern "C"
