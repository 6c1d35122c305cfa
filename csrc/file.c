/* file.c: opening files for reading, safely.
 *
 * Only regular files are read. A FIFO in place of config.json would block open() until some writer appeared (a hang,
 * not an error), and a device could stream forever. So the path is checked with stat() before it is opened, opened
 * with O_NONBLOCK (a FIFO that appeared in between still opens at once, without waiting for a writer), and checked
 * again with fstat() on the descriptor actually read. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static const char *kind_of(mode_t m) {
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

static llmc_status open_failed(const char *path, int e) {
    return llmc_fail(e == ENOENT ? LLMC_ERR_NOT_FOUND : LLMC_ERR_IO, "%s: cannot open: %s", path, strerror(e));
}

llmc_status llmc_open_regular(const char *path, int *fd_out, size_t *size) {
    *fd_out = -1;
    struct stat sb;
    if (stat(path, &sb) != 0) return open_failed(path, errno);
    if (!S_ISREG(sb.st_mode))
        return llmc_fail(LLMC_ERR_IO, "%s: is %s, not a regular file; refusing to read it", path, kind_of(sb.st_mode));
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return open_failed(path, errno);
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) { /* replaced between stat and open */
        close(fd);
        return llmc_fail(LLMC_ERR_IO, "%s: is not a regular file; refusing to read it", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl != -1) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK); /* ordinary blocking reads from here on */
    *fd_out = fd;
    *size = (size_t)sb.st_size;
    return LLMC_OK;
}

llmc_status llmc_read_file(const char *path, size_t max_bytes, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    int fd;
    size_t size;
    llmc_status s = llmc_open_regular(path, &fd, &size);
    if (s) return s;
    if (size > max_bytes) {
        close(fd);
        return llmc_fail(LLMC_ERR_FORMAT, "%s: %zu bytes, larger than the %zu this file may have", path, size,
                         max_bytes);
    }
    char *buf = llmc_malloc(size + 1, "file contents");
    if (!buf) {
        close(fd);
        return LLMC_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < size) { /* read() may return less than asked */
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            close(fd);
            llmc_free(buf);
            return llmc_fail(LLMC_ERR_IO, "%s: %s after %zu of %zu bytes", path, r < 0 ? strerror(e) : "short read",
                             got, size);
        }
        got += (size_t)r;
    }
    close(fd);
    buf[size] = '\0';
    *text = buf;
    *len = size;
    return LLMC_OK;
}
