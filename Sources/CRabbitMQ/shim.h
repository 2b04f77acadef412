// Umbrella header for rabbitmq-c, RabbitMQ's C client (Debian: librabbitmq-dev). Only
// PathNotify imports it, and only from its own publishing thread: the library is synchronous
// and a connection belongs to one thread.
#ifndef CSSD_CRABBITMQ_SHIM_H
#define CSSD_CRABBITMQ_SHIM_H
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

// amqp_login is variadic (SASL arguments), which Swift cannot call: PLAIN only.
static inline amqp_rpc_reply_t cssd_amqp_login_plain(amqp_connection_state_t state, const char *vhost,
                                                     const char *user, const char *password) {
    return amqp_login(state, vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, user, password);
}

// Describes a failed RPC the way an operator can act on it: the library's error text, or the
// broker's reply code and text (403 ACCESS_REFUSED for credentials, 530 NOT_ALLOWED for a vhost
// that does not exist or is not permitted, 406 PRECONDITION_FAILED for a declaration mismatch).
// Returns 0 when the reply is a success.
static inline int cssd_amqp_describe(amqp_rpc_reply_t reply, char *out, size_t size) {
    switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        out[0] = 0;
        return 0;
    case AMQP_RESPONSE_NONE:
        snprintf(out, size, "missing RPC reply");
        return 1;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(out, size, "%s", amqp_error_string2(reply.library_error));
        return 1;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = (amqp_connection_close_t *)reply.reply.decoded;
            snprintf(out, size, "broker closed the connection: %u %.*s", m->reply_code, (int)m->reply_text.len,
                     (char *)m->reply_text.bytes);
        } else if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = (amqp_channel_close_t *)reply.reply.decoded;
            snprintf(out, size, "broker closed the channel: %u %.*s", m->reply_code, (int)m->reply_text.len,
                     (char *)m->reply_text.bytes);
        } else {
            snprintf(out, size, "unexpected broker method 0x%08x", reply.reply.id);
        }
        return 1;
    }
    snprintf(out, size, "unknown reply type %d", (int)reply.reply_type);
    return 1;
}

// Opens the socket with a timeout (seconds): 0 or the library's negative error code.
static inline int cssd_amqp_open(amqp_socket_t *socket, const char *host, int port, int seconds) {
    struct timeval timeout = {seconds, 0};
    return amqp_socket_open_noblock(socket, host, port, &timeout);
}

// Declares what oslo.messaging's rabbit driver declares before it publishes a notification
// (impl_rabbit.py notify_send and _publish_and_creates_default_queue): the topic exchange, and
// a queue named as the routing key bound to it, so that notifications wait for a listener
// that is not there yet. durable and auto-delete as given (oslo: amqp_durable_queues,
// amqp_auto_delete, both false by default).
static inline amqp_rpc_reply_t cssd_amqp_declare(amqp_connection_state_t state, const char *exchange,
                                                 const char *queue, int durable) {
    amqp_exchange_declare(state, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes("topic"), 0, durable, 0, 0,
                          amqp_empty_table);
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(state);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) return reply;
    amqp_queue_declare(state, 1, amqp_cstring_bytes(queue), 0, durable, 0, 0, amqp_empty_table);
    reply = amqp_get_rpc_reply(state);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) return reply;
    amqp_queue_bind(state, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange), amqp_cstring_bytes(queue),
                    amqp_empty_table);
    return amqp_get_rpc_reply(state);
}

// Opens channel 1 and puts it in confirm mode (publisher confirms).
static inline amqp_rpc_reply_t cssd_amqp_open_confirmed_channel(amqp_connection_state_t state) {
    amqp_channel_open(state, 1);
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(state);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) return reply;
    amqp_confirm_select(state, 1);
    return amqp_get_rpc_reply(state);
}

// Publishes one message as kombu publishes oslo.messaging's: content type application/json,
// encoding utf-8, delivery mode 2 (persistent, kombu's default). Returns 0 or an error code.
static inline int cssd_amqp_publish(amqp_connection_state_t state, const char *exchange, const char *routing_key,
                                    const void *body, size_t length, const char *message_id) {
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CONTENT_ENCODING_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_MESSAGE_ID_FLAG;
    props.content_type = amqp_cstring_bytes("application/json");
    props.content_encoding = amqp_cstring_bytes("utf-8");
    props.delivery_mode = 2;
    props.message_id = amqp_cstring_bytes(message_id);
    amqp_bytes_t bytes = {length, (void *)body};
    return amqp_basic_publish(state, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(routing_key), 0, 0, &props,
                              bytes);
}

// Waits up to `millis` for the broker's answer to a publish: 1 with *tag, *multiple and *nack
// set for basic.ack / basic.nack; 0 on timeout; -1 when the connection or channel is gone
// (the reason in `error`).
static inline int cssd_amqp_wait_confirm(amqp_connection_state_t state, int millis, uint64_t *tag, int *multiple,
                                         int *nack, char *error, size_t size) {
    struct timeval timeout = {millis / 1000, (millis % 1000) * 1000};
    for (;;) {
        amqp_frame_t frame;
        int status = amqp_simple_wait_frame_noblock(state, &frame, &timeout);
        if (status == AMQP_STATUS_TIMEOUT) return 0;
        if (status != AMQP_STATUS_OK) {
            snprintf(error, size, "%s", amqp_error_string2(status));
            return -1;
        }
        if (frame.frame_type != AMQP_FRAME_METHOD) continue;  // heartbeats, stray content
        switch (frame.payload.method.id) {
        case AMQP_BASIC_ACK_METHOD: {
            amqp_basic_ack_t *ack = (amqp_basic_ack_t *)frame.payload.method.decoded;
            *tag = ack->delivery_tag;
            *multiple = ack->multiple;
            *nack = 0;
            amqp_maybe_release_buffers(state);
            return 1;
        }
        case AMQP_BASIC_NACK_METHOD: {
            amqp_basic_nack_t *n = (amqp_basic_nack_t *)frame.payload.method.decoded;
            *tag = n->delivery_tag;
            *multiple = n->multiple;
            *nack = 1;
            amqp_maybe_release_buffers(state);
            return 1;
        }
        case AMQP_CONNECTION_CLOSE_METHOD: {
            amqp_connection_close_t *m = (amqp_connection_close_t *)frame.payload.method.decoded;
            snprintf(error, size, "broker closed the connection: %u %.*s", m->reply_code, (int)m->reply_text.len,
                     (char *)m->reply_text.bytes);
            amqp_connection_close_ok_t ok;
            amqp_send_method(state, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
            return -1;
        }
        case AMQP_CHANNEL_CLOSE_METHOD: {
            amqp_channel_close_t *m = (amqp_channel_close_t *)frame.payload.method.decoded;
            snprintf(error, size, "broker closed the channel: %u %.*s", m->reply_code, (int)m->reply_text.len,
                     (char *)m->reply_text.bytes);
            return -1;
        }
        default:
            continue;
        }
    }
}
#endif
