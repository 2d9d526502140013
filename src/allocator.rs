//! The process's memory allocator: mimalloc, told to hand freed memory back to the system at
//! once. mimalloc's defaults keep it for reuse: freed pages for a second, and whole
//! arenas committed up front, which left a cold poll of 1,000 feeds at 104 MB peak RSS where the
//! live heap (heaptrack, on the system allocator) never passed 15 MB. With prompt purging and arenas committed as used, the same poll
//! peaks at 61 MB at the same speed (BENCHMARKS.md, "Allocator").

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in the mimalloc this build links (v3, `mimalloc.h`).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
/// `mi_option_purge_delay`, in milliseconds.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets the allocator's options. They must be set before mimalloc makes its first arena (at the
/// first allocation, which Rust's runtime makes before `main`), or that arena is committed up
/// front and never purged: on Linux this runs as a constructor, before any allocation; `main`
/// calls it again, harmlessly, for other systems.
pub fn configure() {
    for (option, value) in [(ARENA_EAGER_COMMIT, 0), (PURGE_DELAY, 0)] {
        // SAFETY: a plain option setter of the linked mimalloc; it does not allocate.
        unsafe { libmimalloc_sys::mi_option_set(option, value) };
    }
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static CONFIGURE_FIRST: extern "C" fn() = {
    extern "C" fn first() {
        configure();
    }
    first
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The position of `name` in the `mi_option_e` enum of the linked mimalloc's header (read
    /// where cargo unpacked libmimalloc-sys, the version in Cargo.lock).
    fn option_number(name: &str) -> Option<i32> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let lock = std::fs::read_to_string(root.join("Cargo.lock")).ok()?;
        let version = lock
            .split("[[package]]")
            .find(|p| p.contains("name = \"libmimalloc-sys\""))?
            .lines()
            .find_map(|l| l.strip_prefix("version = "))?
            .trim_matches('"')
            .to_string();
        let home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo"))
            })?;
        let header = std::fs::read_dir(home.join("registry/src"))
            .ok()?
            .flatten()
            .map(|index| {
                index.path().join(format!(
                    "libmimalloc-sys-{version}/c_src/mimalloc/v3/include/mimalloc.h"
                ))
            })
            .find_map(|path| std::fs::read_to_string(path).ok())?;
        let body = header.split("typedef enum mi_option_e {").nth(1)?;
        let body = body.split('}').next()?;
        body.lines()
            .map(|l| l.split("//").next().unwrap_or("").trim())
            .filter(|l| l.starts_with("mi_option_") && !l.contains('='))
            .position(|l| l.trim_end_matches(',') == name)
            .map(|n| n as i32)
    }

    #[test]
    fn the_options_are_those_meant_and_set_before_main() {
        match (
            option_number("mi_option_arena_eager_commit"),
            option_number("mi_option_purge_delay"),
        ) {
            (Some(eager), Some(delay)) => {
                assert_eq!((eager, delay), (ARENA_EAGER_COMMIT, PURGE_DELAY));
            }
            _ => eprintln!("SKIPPED: libmimalloc-sys's header is not under CARGO_HOME"),
        }
        // SAFETY: option getters of the linked mimalloc.
        let set = unsafe {
            (
                libmimalloc_sys::mi_option_get(ARENA_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(PURGE_DELAY),
            )
        };
        assert_eq!(set, (0, 0), "set by the constructor");
    }
}
