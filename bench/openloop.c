/*
 * openloop: HTTP/1.1 POSTs at a constant rate, open loop, for bench_assign's latency phase.
 *
 * Request i is due at i / RATE seconds after the start and is sent then, on an idle keep-alive
 * connection or a new one, whatever the earlier requests are doing: a slow server gets more
 * concurrent requests, never fewer (the model of wrk2). Latency is counted from the due time,
 * not from the send, so time a request spent waiting for this program is charged to it too.
 *
 * Written because no cheap open-loop generator could be had here: wrk2 is not packaged, and
 * vegeta took 0.6 of a core (half of it in the kernel) for 2,800 requests/s on a 2-core
 * machine where the server under test took as much. This one is a single thread on epoll.
 *
 * usage: openloop HOST PORT PATH RATE SECONDS BODIES OUT
 *   BODIES  a file of request bodies (JSON), one a line; requests cycle through them
 *   OUT     written with one line per request: "due_ns send_lag_ns latency_ns status"
 *           (status 0: the connection failed; -1: no answer within 10 s of the end)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNECTIONS 1000
#define INITIAL_CONNECTIONS 32
#define OUT_SIZE 4096
#define IN_SIZE 16384
#define DRAIN_NS 10000000000LL
#define STALE_NS 3000000000LL /* uvicorn closes a connection idle for 5 s: never reuse one near that */

typedef struct {
    int fd;                /* -1 when closed */
    int connected;
    long request;          /* the outstanding request, -1 when idle */
    int listed;            /* on the idle stack */
    int64_t idle_since_ns;
    char out[OUT_SIZE];
    size_t out_len, out_sent;
    char in[IN_SIZE];
    size_t in_len;
} Connection;

typedef struct {
    int64_t send_lag_ns, latency_ns;
    int status, done;
} Outcome;

static Connection connections[MAX_CONNECTIONS];
static int connection_count;
static int idle[MAX_CONNECTIONS], idle_count;
static int epoll_fd;
static struct sockaddr_in address;
static char host_header[128], path[1024];
static char **bodies;
static long body_count;
static Outcome *outcomes;
static long completed;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void finish(Connection *c, int status, int64_t latency_ns) {
    if (c->request >= 0) {
        outcomes[c->request].status = status;
        outcomes[c->request].latency_ns = latency_ns;
        outcomes[c->request].done = 1;
        completed++;
    }
    c->request = -1;
}

static void push_idle(Connection *c) {
    if (!c->listed) {
        c->listed = 1;
        c->idle_since_ns = now_ns();
        idle[idle_count++] = (int)(c - connections);
    }
}

static Connection *pop_idle(void) {
    Connection *c = &connections[idle[--idle_count]];
    c->listed = 0;
    return c;
}

static void close_connection(Connection *c) {
    finish(c, 0, 0);
    if (c->fd >= 0) {
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->connected = 0;
    c->in_len = 0;
}

static void open_connection(Connection *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&address, sizeof address) < 0 && errno != EINPROGRESS)
        die("connect");
    struct epoll_event event = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
    event.data.ptr = c;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, c->fd, &event) < 0)
        die("epoll_ctl");
    c->connected = 0;
    c->in_len = 0;
    c->request = -1;
}

static void flush(Connection *c) {
    while (c->connected && c->out_sent < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN)
                close_connection(c);
            return; /* EAGAIN: EPOLLOUT resumes it */
        }
        c->out_sent += (size_t)n;
    }
}

static void send_request(Connection *c, long i, int64_t lag_ns) {
    if (c->fd >= 0 && c->request < 0 && now_ns() - c->idle_since_ns > STALE_NS)
        close_connection(c);
    if (c->fd < 0)
        open_connection(c);
    const char *body = bodies[i % body_count];
    size_t length = strlen(body);
    int n = snprintf(c->out, OUT_SIZE,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, host_header, length, body);
    if (n < 0 || n >= OUT_SIZE) {
        fprintf(stderr, "openloop: request %ld does not fit in %d bytes\n", i, OUT_SIZE);
        exit(2);
    }
    c->out_len = (size_t)n;
    c->out_sent = 0;
    c->request = i;
    outcomes[i].send_lag_ns = lag_ns;
    flush(c);
}

/* A whole response in the buffer: its status; 0 while more bytes are needed; -2 unparseable. */
static int parse_response(Connection *c, size_t *consumed) {
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (end == NULL)
        return c->in_len >= IN_SIZE ? -2 : 0;
    size_t head = (size_t)(end - c->in) + 4;
    int status = 0;
    if (sscanf(c->in, "HTTP/1.%*d %d", &status) != 1)
        return -2;
    long length = -1;
    for (char *line = c->in; line && line < end; line = memchr(line, '\n', (size_t)(end - line))) {
        line += (*line == '\n');
        if (strncasecmp(line, "content-length:", 15) == 0)
            length = strtol(line + 15, NULL, 10);
    }
    if (length < 0 || head + (size_t)length > IN_SIZE)
        return -2; /* chunked or oversized answers are not expected from the benchmarked apps */
    if (c->in_len < head + (size_t)length)
        return 0;
    *consumed = head + (size_t)length;
    return status;
}

static void on_readable(Connection *c, int64_t start_ns, int64_t interval_ns) {
    for (;;) {
        ssize_t n = recv(c->fd, c->in + c->in_len, IN_SIZE - c->in_len, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN)) {
            close_connection(c);
            return;
        }
        if (n < 0)
            return;
        c->in_len += (size_t)n;
        size_t consumed = 0;
        int status = parse_response(c, &consumed);
        if (status == -2) {
            fprintf(stderr, "openloop: unparseable response\n");
            exit(2);
        }
        if (status > 0 && c->request >= 0) {
            int64_t due = start_ns + c->request * interval_ns;
            finish(c, status, now_ns() - due);
            memmove(c->in, c->in + consumed, c->in_len - consumed);
            c->in_len -= consumed;
            push_idle(c);
        }
    }
}

static char **read_lines(const char *file, long *count) {
    FILE *in = fopen(file, "r");
    if (in == NULL)
        die(file);
    long capacity = 1024;
    char **lines = malloc((size_t)capacity * sizeof *lines);
    char *line = NULL;
    size_t size = 0;
    ssize_t n;
    *count = 0;
    while ((n = getline(&line, &size, in)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (*count == capacity)
            lines = realloc(lines, (size_t)(capacity *= 2) * sizeof *lines);
        lines[(*count)++] = strdup(line);
    }
    free(line);
    fclose(in);
    if (*count == 0) {
        fprintf(stderr, "openloop: %s has no bodies\n", file);
        exit(2);
    }
    return lines;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: openloop HOST PORT PATH RATE SECONDS BODIES OUT\n");
        return 2;
    }
    double rate = atof(argv[4]), seconds = atof(argv[5]);
    if (rate <= 0 || seconds <= 0) {
        fprintf(stderr, "openloop: RATE and SECONDS must be positive\n");
        return 2;
    }
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &address.sin_addr) != 1) {
        fprintf(stderr, "openloop: HOST must be an IPv4 address\n");
        return 2;
    }
    snprintf(host_header, sizeof host_header, "%s:%s", argv[1], argv[2]);
    snprintf(path, sizeof path, "%s", argv[3]);
    bodies = read_lines(argv[6], &body_count);
    long total = (long)(rate * seconds);
    int64_t interval_ns = (int64_t)(1e9 / rate);
    outcomes = calloc((size_t)total, sizeof *outcomes);
    prctl(PR_SET_TIMERSLACK, 1UL); /* wake at the due time, not up to 50 us later */

    epoll_fd = epoll_create1(0);
    if (epoll_fd < 0)
        die("epoll_create1");
    for (int k = 0; k < MAX_CONNECTIONS; k++)
        connections[k].fd = -1, connections[k].request = -1;
    for (; connection_count < INITIAL_CONNECTIONS; connection_count++) {
        open_connection(&connections[connection_count]);
        push_idle(&connections[connection_count]);
    }

    struct epoll_event events[256];
    int64_t start_ns = now_ns() + 100000000LL; /* connections open in the first 100 ms */
    int64_t give_up_ns = start_ns + (int64_t)(seconds * 1e9) + DRAIN_NS;
    long next = 0;
    while (completed < total) {
        int64_t now = now_ns();
        if (now > give_up_ns)
            break;
        while (next < total && start_ns + next * interval_ns <= now) {
            Connection *c;
            if (idle_count > 0)
                c = pop_idle();
            else if (connection_count < MAX_CONNECTIONS)
                c = &connections[connection_count++];
            else
                break; /* every connection busy: the request waits, and its latency shows it */
            send_request(c, next, now - (start_ns + next * interval_ns));
            next++;
            if (c->request < 0) /* the send failed (counted): the connection reopens on reuse */
                push_idle(c);
        }
        struct timespec timeout = {0, 1000000}; /* waiting for answers only: 1 ms */
        if (next < total && idle_count + (MAX_CONNECTIONS - connection_count) > 0) {
            int64_t wait = start_ns + next * interval_ns - now_ns();
            if (wait < 0)
                wait = 0;
            timeout.tv_sec = wait / 1000000000LL;
            timeout.tv_nsec = wait % 1000000000LL;
        }
        int n = epoll_pwait2(epoll_fd, events, 256, &timeout, NULL);
        if (n < 0 && errno != EINTR)
            die("epoll_pwait2");
        for (int k = 0; k < n; k++) {
            Connection *c = events[k].data.ptr;
            if (c->fd < 0)
                continue;
            if (!c->connected && (events[k].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
                int error = 0;
                socklen_t size = sizeof error;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
                if (error != 0 || (events[k].events & (EPOLLERR | EPOLLHUP)))
                    close_connection(c);
                else
                    c->connected = 1;
            }
            if (c->fd >= 0 && (events[k].events & EPOLLOUT))
                flush(c);
            if (c->fd >= 0 && (events[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)))
                on_readable(c, start_ns, interval_ns);
            if (c->request < 0) /* answered or closed: free again (a closed one reopens) */
                push_idle(c);
        }
    }

    FILE *out = fopen(argv[7], "w");
    if (out == NULL)
        die(argv[7]);
    for (long i = 0; i < total; i++) {
        const Outcome *o = &outcomes[i];
        int status = o->done ? o->status : -1;
        fprintf(out, "%lld %lld %lld %d\n", (long long)(i * interval_ns),
                (long long)o->send_lag_ns, (long long)o->latency_ns, status);
    }
    fclose(out);
    return 0;
}
