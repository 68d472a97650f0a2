// Errors across the C API, shared by connx.cpp and checkpoint.cpp: every C++ exception and every
// protobuf log line becomes a `connx_error` value, so nothing but values crosses into Swift.
// Private to the C layer (outside include/: Swift never sees it).
#ifndef CONNX_ERRORS_H
#define CONNX_ERRORS_H

#include "connx.h"

#include <google/protobuf/stubs/logging.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <string>

namespace connx_detail {

// Protobuf logs parse and size errors to stderr by default. We capture every log line in a
// per-thread buffer instead, so the message reaches Swift inside the error value.
inline thread_local std::string captured_log;

inline void capture_log(google::protobuf::LogLevel, const char *, int, const std::string &message) {
    if (!captured_log.empty()) captured_log += "; ";
    captured_log += message;
}

inline void install_log_handler() {
    static std::once_flag once;
    std::call_once(once, [] { google::protobuf::SetLogHandler(&capture_log); });
}

// Error returned when even building an error fails (out of memory).
inline connx_error *oom_error() {
    static char text[] = "out of memory";
    static connx_error error{text};
    return &error;
}

inline connx_error *make_error(const std::string &message) {
    // malloc, not new: allocation failure here must not throw out of a catch block;
    // connx_error_free releases with free().
    auto *error = static_cast<connx_error *>(std::malloc(sizeof(connx_error)));
    if (!error) return oom_error();
    error->message = static_cast<char *>(std::malloc(message.size() + 1));
    if (error->message) {
        std::memcpy(error->message, message.data(), message.size());
        error->message[message.size()] = 0;
    }
    return error;
}

inline connx_error *error_with_log(const std::string &message) {
    std::string full = message;
    if (!captured_log.empty()) full += " (protobuf: " + captured_log + ")";
    return make_error(full);
}

// Runs `body`, turning every C++ exception (libonnx's ValidationError, protobuf's
// FatalException, bad_alloc, anything else) into an error value that starts with `what`.
template <typename Body>
connx_error *guarded(const char *what, Body body) {
    install_log_handler();
    captured_log.clear();
    try {
        return body();
    } catch (const std::bad_alloc &) {
        return error_with_log(std::string(what) + ": out of memory");
    } catch (const std::exception &e) {
        return error_with_log(std::string(what) + ": " + e.what());
    } catch (...) {
        return error_with_log(std::string(what) + ": unknown C++ exception");
    }
}

}  // namespace connx_detail

#endif
