/*  ctl_rundir - where the run directory is, and whether skickctl may trust it

    The run directory holds what skickctl acts on later: cluster.json (the
    programs `scale` runs, the pids `down` signals), the pid and exit files,
    the logs, the CURVE keys and the broker's control socket. Whoever can
    change it can make skickctl run their program, or signal a process of
    ours. So before anything in it is used, it is checked the way ssh checks
    ~/.ssh, and refused with a message that says what is wrong and what to
    do:

    * RUN_DIR itself (lstat: a directory, not a symlink), its logs/, keys/
      and keys/allow, when they exist: owned by us and not writable by
      group or others;
    * for the default, its parent too ($XDG_RUNTIME_DIR/skick or
      ${SKICK_RUN_BASE:-/tmp}/skick-UID): another user may create
      /tmp/skick-UID before we do, and own everything under it;
    * every directory above RUN_DIR (after resolving symlinks): owned by
      root or by us, and writable by others only with the sticky bit (as
      /tmp is), so nobody else can rename RUN_DIR or a parent away and put
      another in its place.

    Created directories get 0700. After the check ctl->run_dir is the real
    path, so later opens do not go through a symlink someone could change.
    Files are opened with O_NOFOLLOW and checked on their descriptor
    (ctl_rundir_open): a regular file, ours, not writable by group or
    others. Single-threaded: the reason for the last refusal is kept in a
    static buffer (ctl_rundir_why).
*/
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

static char s_why[PATH_MAX + 512]; /* the last refusal, for ctl_rundir_why */

void ctl_rundir_default(char *out, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR"), *base = getenv("SKICK_RUN_BASE");
    struct stat st; /* a stale XDG_RUNTIME_DIR (su, sudo) is not for us to create */
    if (xdg && xdg[0] == '/' && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(out, len, "%s/skick/run", xdg);
    else
        snprintf(out, len, "%s/skick-%u/run", base && base[0] == '/' ? base : "/tmp",
                 (unsigned) getuid());
}

const char *ctl_rundir_why(void)
{
    return s_why;
}

/*  A uid as "name (uid N)". */
static void s_user(uid_t uid, char *buf, size_t len)
{
    struct passwd *pw = getpwuid(uid);
    if (pw && pw->pw_name)
        snprintf(buf, len, "%s (uid %u)", pw->pw_name, (unsigned) uid);
    else
        snprintf(buf, len, "uid %u", (unsigned) uid);
}

/*  The refusal of path (what: "the run directory X" or "X, a parent of
    the run directory Y") for reason; always -1 with errno EPERM. */
static int s_refuse(const char *what, const char *path, const struct stat *st, const char *reason)
{
    char owner[96], me[96];
    s_user(st->st_uid, owner, sizeof owner);
    s_user(getuid(), me, sizeof me);
    snprintf(s_why, sizeof s_why,
             "%s is not safe to use: %s (owner %s, mode %04o; you are %s). Another user could "
             "change what skickctl runs and signals from there. Remove %s (as its owner or root) "
             "and run skickctl again, or give a directory of your own with --run-dir or "
             "SKICK_RUN_DIR",
             what, reason, owner, (unsigned) (st->st_mode & 07777), me, path);
    errno = EPERM;
    return -1;
}

/*  The strict check of a directory skickctl keeps things in: lstat, a real
    directory, ours, not writable by group or others. 0; -1 with errno
    (ENOENT: it does not exist; EPERM: why in s_why). */
static int s_check_own(const char *what, const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return -1;
    if (S_ISLNK(st.st_mode))
        return s_refuse(what, path, &st, "it is a symbolic link, not a directory");
    if (!S_ISDIR(st.st_mode))
        return s_refuse(what, path, &st, "it is not a directory");
    if (st.st_uid != getuid())
        return s_refuse(what, path, &st, "it belongs to another user");
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return s_refuse(what, path, &st, "it is writable by group or others");
    return 0;
}

/*  Every directory above real (an absolute resolved path): owned by root
    or us, and writable by others only when sticky. 0, or -1 (EPERM). */
static int s_check_parents(const char *real, const char *run_dir)
{
    char path[PATH_MAX], what[PATH_MAX * 2 + 64];
    snprintf(path, sizeof path, "%s", real);
    for (char *slash = strrchr(path, '/'); slash; slash = strrchr(path, '/')) {
        *slash = '\0';
        const char *dir = path[0] ? path : "/";
        struct stat st;
        if (stat(dir, &st) != 0)
            return -1;
        snprintf(what, sizeof what, "%s, a parent of the run directory %s,", dir, run_dir);
        if (st.st_uid != 0 && st.st_uid != getuid())
            return s_refuse(what, dir, &st, "it belongs to another user");
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
            return s_refuse(what, dir, &st,
                            "it is writable by group or others without the "
                            "sticky bit");
        if (!path[0])
            break;
    }
    return 0;
}

/*  mkdir with 0700 when missing; the caller checks what is there. */
static int s_make(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/*  The check, creating when create; see ctl_rundir_check. */
static int s_check(ctl_t *ctl, bool create)
{
    char def[PATH_MAX], what[PATH_MAX + 64], real[PATH_MAX], sub[PATH_MAX + 16];
    ctl_rundir_default(def, sizeof def);
    snprintf(what, sizeof what, "the run directory %s", ctl->run_dir);
    s_why[0] = '\0';
    if (strcmp(ctl->run_dir, def) == 0) { /* the default: its parent is ours too */
        char base[PATH_MAX], bwhat[PATH_MAX + 64];
        snprintf(base, sizeof base, "%s", def);
        *strrchr(base, '/') = '\0';
        snprintf(bwhat, sizeof bwhat, "%s, the parent of the run directory,", base);
        if ((create && s_make(base) != 0) || s_check_own(bwhat, base) != 0)
            return -1;
    }
    if ((create && ctl_mkdirs(ctl->run_dir, 0700) != 0) || s_check_own(what, ctl->run_dir) != 0)
        return -1;
    if (!realpath(ctl->run_dir, real) || s_check_parents(real, ctl->run_dir) != 0)
        return -1;
    snprintf(ctl->run_dir, sizeof ctl->run_dir, "%s", real);
    static const char *const subs[] = {"logs", "keys", "keys/allow", "keys/allow/shards",
                                       "keys/allow/clients", "keys/allow/bridges"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        snprintf(sub, sizeof sub, "%s/%s", ctl->run_dir, subs[i]);
        snprintf(what, sizeof what, "%s (in the run directory)", sub);
        if (create && i == 0 && s_make(sub) != 0)
            return -1;
        if (s_check_own(what, sub) != 0 && errno != ENOENT)
            return -1;
    }
    return 0;
}

int ctl_rundir_check(ctl_t *ctl)
{
    return s_check(ctl, false);
}

int ctl_rundir_secure(ctl_t *ctl, bool create)
{
    char given[PATH_MAX];
    snprintf(given, sizeof given, "%s", ctl->run_dir);
    if (s_check(ctl, create) != 0) {
        if (errno == EPERM)
            return ctl_fail(ctl, SKICK_EINVAL, "%s", s_why), -1;
        if (errno == ENOENT && !create)
            return ctl_fail(ctl, SKICK_ENOTFOUND, "no cluster in %s (skickctl up first)", given),
                   -1;
        return ctl_fail(ctl, SKICK_ESTART, "cannot create or read the run directory %s: %s", given,
                        strerror(errno)),
               -1;
    }
    if (create)
        chmod(ctl->run_dir, 0700); /* ours: the control socket lives here, owner only */
    if (!ctl->control_given)
        snprintf(ctl->control, sizeof ctl->control, "ipc://%s/control", ctl->run_dir);
    return 0;
}

int ctl_rundir_open(ctl_t *ctl, const char *name)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", ctl->run_dir, name);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    struct stat st = {0};
    if (fd < 0) {
        if (errno == ELOOP) { /* O_NOFOLLOW met a symlink */
            if (lstat(path, &st) == 0)
                return s_refuse(path, path, &st, "it is a symbolic link, not a file");
            errno = ELOOP;
        }
        return -1;
    }
    const char *bad = fstat(fd, &st) != 0                ? "it cannot be examined"
                      : !S_ISREG(st.st_mode)             ? "it is not a regular file"
                      : st.st_uid != getuid()            ? "it belongs to another user"
                      : st.st_mode & (S_IWGRP | S_IWOTH) ? "it is writable by group or others"
                                                         : NULL;
    if (bad) {
        close(fd);
        return s_refuse(path, path, &st, bad);
    }
    return fd;
}
