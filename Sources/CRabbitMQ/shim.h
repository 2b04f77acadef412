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

// amqp_login is variadic (SASL arguments), which Swift cannot call: PLAIN only. `heartbeat`
// (seconds, 0: none) is the interval cssd proposes; the broker may lower it (rabbitmq-c takes
// the smaller of the two, amqp_socket.c amqp_login_inner). With it, rabbitmq-c sends a
// heartbeat when it sent nothing for that long, and fails a wait or a publish with
// AMQP_STATUS_HEARTBEAT_TIMEOUT after twice that long without a byte from the broker.
static inline amqp_rpc_reply_t cssd_amqp_login_plain(amqp_connection_state_t state, const char *vhost,
                                                     const char *user, const char *password, int heartbeat) {
    return amqp_login(state, vhost, 0, 131072, heartbeat, AMQP_SASL_METHOD_PLAIN, user, password);
}

// The deadlines rabbitmq-c 0.11 keeps itself (amqp.h): the login handshake (connection.start
// to connection.open-ok; the library's default is 12 s) and every RPC after it (channel.open,
// confirm.select, the declarations, channel.close, connection.close; default: none). An RPC
// that overruns returns AMQP_STATUS_TIMEOUT and the library closes the socket.
static inline void cssd_amqp_set_deadlines(amqp_connection_state_t state, int millis) {
    struct timeval timeout = {millis / 1000, (millis % 1000) * 1000};
    amqp_set_handshake_timeout(state, &timeout);
    amqp_set_rpc_timeout(state, &timeout);
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

// Opens the socket (TCP connect, and the TLS handshake for amqps) with a timeout: 0 or the
// library's negative error code (AMQP_STATUS_TIMEOUT when it overran).
static inline int cssd_amqp_open(amqp_socket_t *socket, const char *host, int port, int millis) {
    struct timeval timeout = {millis / 1000, (millis % 1000) * 1000};
    return amqp_socket_open_noblock(socket, host, port, &timeout);
}

// What oslo.messaging's rabbit driver declares before it publishes a notification
// (impl_rabbit.py notify_send and _publish_and_creates_default_queue): the topic exchange, and
// a queue named as the routing key bound to it, so that notifications wait for a listener
// that is not there yet. durable and auto-delete as given (oslo: amqp_durable_queues,
// amqp_auto_delete, both false by default). One RPC each, so that a failure names its step.
static inline amqp_rpc_reply_t cssd_amqp_declare_exchange(amqp_connection_state_t state, const char *exchange,
                                                          int durable) {
    amqp_exchange_declare(state, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes("topic"), 0, durable, 0, 0,
                          amqp_empty_table);
    return amqp_get_rpc_reply(state);
}

static inline amqp_rpc_reply_t cssd_amqp_declare_queue(amqp_connection_state_t state, const char *queue,
                                                       int durable) {
    amqp_queue_declare(state, 1, amqp_cstring_bytes(queue), 0, durable, 0, 0, amqp_empty_table);
    return amqp_get_rpc_reply(state);
}

static inline amqp_rpc_reply_t cssd_amqp_bind_queue(amqp_connection_state_t state, const char *queue,
                                                    const char *exchange) {
    amqp_queue_bind(state, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange), amqp_cstring_bytes(queue),
                    amqp_empty_table);
    return amqp_get_rpc_reply(state);
}

// Opens channel 1.
static inline amqp_rpc_reply_t cssd_amqp_open_channel(amqp_connection_state_t state) {
    amqp_channel_open(state, 1);
    return amqp_get_rpc_reply(state);
}

// Puts channel 1 in confirm mode (publisher confirms).
static inline amqp_rpc_reply_t cssd_amqp_confirm_select(amqp_connection_state_t state) {
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
// set for basic.ack / basic.nack; 0 on timeout; a negative library status when the connection
// is gone (AMQP_STATUS_HEARTBEAT_TIMEOUT: nothing from the broker for twice the heartbeat), or
// CSSD_AMQP_CLOSED_BY_BROKER; the reason in `error` either way. Also services heartbeats.
#define CSSD_AMQP_CLOSED_BY_BROKER (-0x7001)
static inline int cssd_amqp_wait_confirm(amqp_connection_state_t state, int millis, uint64_t *tag, int *multiple,
                                         int *nack, char *error, size_t size) {
    struct timeval timeout = {millis / 1000, (millis % 1000) * 1000};
    for (;;) {
        amqp_frame_t frame;
        int status = amqp_simple_wait_frame_noblock(state, &frame, &timeout);
        if (status == AMQP_STATUS_TIMEOUT) return 0;
        if (status != AMQP_STATUS_OK) {
            snprintf(error, size, "%s", amqp_error_string2(status));
            return status;
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
            return CSSD_AMQP_CLOSED_BY_BROKER;
        }
        case AMQP_CHANNEL_CLOSE_METHOD: {
            amqp_channel_close_t *m = (amqp_channel_close_t *)frame.payload.method.decoded;
            snprintf(error, size, "broker closed the channel: %u %.*s", m->reply_code, (int)m->reply_text.len,
                     (char *)m->reply_text.bytes);
            return CSSD_AMQP_CLOSED_BY_BROKER;
        }
        default:
            continue;
        }
    }
}
#endif
