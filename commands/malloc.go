package commands

// The scaler binary's roles run with glibc's allocator tuned for large
// messages (internal/malloctune: the scheduler, the object storage and the
// workers move them; measured there). It is linked here, in the binary's
// one entry package, and not by transport, so that tests and other programs
// that link transport keep glibc's defaults. It must be an ELF constructor
// that runs before any thread, which is why it is linked for its effect
// rather than called by a role (see the package's comment).
import _ "github.com/opengris/scaler/internal/malloctune"
