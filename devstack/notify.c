/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Readiness, as systemd's Type=notify does it: each service gets NOTIFY_SOCKET, a datagram socket of its
 * own, and is ready once its main process sends a message with the line READY=1 (sd_notify(3)). */
#include <sys/socket.h>
#include <sys/un.h>

#include "devstack.h"
#include "log.h"

/* Before child exits: a service that says READY=1 and then fails was ready first. */
#define NOTIFY_PRIORITY    (SD_EVENT_PRIORITY_NORMAL - 10)
#define NOTIFY_MESSAGE_MAX 4096
#define NOTIFY_FDS_MAX     16

static void close_passed_fds(struct msghdr *mh)
{
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < n; i++) {
                        int fd;

                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
                        safe_close(fd);
                }
        }
}

static pid_t sender_pid(struct msghdr *mh)
{
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                    c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
                        struct ucred cred;

                        memcpy(&cred, CMSG_DATA(c), sizeof(cred));
                        return cred.pid;
                }
        return 0;
}

static void service_notified(Service *svc, char *message)
{
        bool ready = false;
        char *save = NULL;

        for (char *line = strtok_r(message, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                if (streq(line, "READY=1"))
                        ready = true;
                else if (strncmp(line, "STATUS=", 7) == 0)
                        log_debug("%s: %s", svc->name, line + 7);
        if (ready)
                service_ready(svc);
}

static int on_notify(sd_event_source *source, int fd, uint32_t revents, void *userdata)
{
        Service *svc = userdata;
        char message[NOTIFY_MESSAGE_MAX + 1];
        union {
                struct cmsghdr header;
                uint8_t buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * NOTIFY_FDS_MAX)];
        } control;
        struct iovec iov = {.iov_base = message, .iov_len = NOTIFY_MESSAGE_MAX};
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        ssize_t n;
        pid_t pid;

        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        log_warning_errno(negative_errno(), "Failed to read %s: %m", svc->notify_path);
                return 0;
        }
        /* No file descriptor store here: what a service passes is closed at once. */
        close_passed_fds(&mh);

        /* As NotifyAccess=main: a late message of a process that has since died, or of a helper, is not
         * the service speaking. */
        pid = sender_pid(&mh);
        if (pid <= 0 || pid != svc->process.pid) {
                log_debug("Ignoring a message on %s from pid %d, not the main process of %s.", svc->notify_path,
                          (int)pid, svc->name);
                return 0;
        }
        message[n] = '\0';
        service_notified(svc, message);
        return 0;
}

int service_listen_notify(Service *svc)
{
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
        } address = {.un.sun_family = AF_UNIX};
        static const int one = 1;
        int r;

        if (strlen(svc->notify_path) >= sizeof(address.un.sun_path))
                return log_error_errno(-ENAMETOOLONG,
                                       "The socket path %s is longer than a unix socket allows (%zu bytes); use "
                                       "a shorter --state-dir.",
                                       svc->notify_path, sizeof(address.un.sun_path) - 1);
        strcpy(address.un.sun_path, svc->notify_path);

        svc->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (svc->notify_fd < 0)
                return log_error_errno(negative_errno(), "Failed to create a socket: %m");
        (void)unlink(svc->notify_path);
        if (bind(svc->notify_fd, &address.sa, sizeof(address.un)) < 0)
                return log_error_errno(negative_errno(), "Failed to bind %s: %m", svc->notify_path);
        /* The kernel then attaches the sender's credentials to every message. */
        if (setsockopt(svc->notify_fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
                return log_error_errno(negative_errno(), "Failed to enable SO_PASSCRED on %s: %m", svc->notify_path);

        r = sd_event_add_io(svc->stack->event, &svc->notify_source, svc->notify_fd, EPOLLIN, on_notify, svc);
        if (r < 0)
                return log_error_errno(r, "Failed to watch %s: %m", svc->notify_path);
        r = sd_event_source_set_priority(svc->notify_source, NOTIFY_PRIORITY);
        if (r < 0)
                return log_error_errno(r, "Failed to set the priority of %s: %m", svc->notify_path);
        return 0;
}
