//! Compiled code kept between runs: each component or module compiled once
//! per engine settings and stored uncompressed, then loaded by mapping the
//! file. A warm start reads only the pages it uses, and a large
//! component's memory image (a Python task's heap snapshot is tens of
//! megabytes) is mapped from the file rather than decompressed and copied,
//! as wasmtime's own compressed cache does.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;

/// A directory of compiled code for one engine's settings.
pub(crate) struct CodeCache {
    dir: PathBuf,
    /// What the engine's settings and wasmtime's version make of compiled
    /// code, in each file's name: another engine never finds it.
    engine: u64,
}

impl CodeCache {
    pub(crate) fn new(dir: &Path, engine: &Engine) -> std::io::Result<CodeCache> {
        std::fs::create_dir_all(dir)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(CodeCache {
            dir: dir.to_path_buf(),
            engine: hasher.finish(),
        })
    }

    /// What `bytes` compile to: from the cache, else compiled now and
    /// kept. A file that does not load (cut short, another build) is
    /// compiled again and replaced; a cache that cannot be written only
    /// costs the next run a compile.
    pub(crate) fn get_or_compile<T>(
        &self,
        bytes: &[u8],
        compile: impl FnOnce() -> wasmtime::Result<T>,
        serialize: impl FnOnce(&T) -> wasmtime::Result<Vec<u8>>,
        deserialize: impl FnOnce(&Path) -> wasmtime::Result<T>,
    ) -> wasmtime::Result<T> {
        let path = self.path(bytes);
        if path.is_file()
            && let Ok(code) = deserialize(&path)
        {
            return Ok(code);
        }
        let code = compile()?;
        if let Ok(serialized) = serialize(&code) {
            // Whole or not at all: written aside, then renamed into place.
            let partial = path.with_extension(format!("{}.partial", std::process::id()));
            if std::fs::write(&partial, serialized).is_ok() {
                let _ = std::fs::rename(&partial, &path);
            }
            let _ = std::fs::remove_file(&partial);
        }
        Ok(code)
    }

    fn path(&self, bytes: &[u8]) -> PathBuf {
        let digest = Sha256::digest(bytes);
        let mut name = String::with_capacity(90);
        for byte in &digest[..20] {
            name.push_str(&format!("{byte:02x}"));
        }
        self.dir.join(format!("{name}-{:016x}.cwasm", self.engine))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_once_and_recompiles_what_does_not_load() {
        let dir = std::env::temp_dir().join(format!("wasmpool-code-{}", std::process::id()));
        let cache = CodeCache::new(&dir, &Engine::default()).unwrap();
        let compile_count = std::cell::Cell::new(0);
        let get = || {
            cache.get_or_compile(
                b"some module",
                || {
                    compile_count.set(compile_count.get() + 1);
                    Ok(b"code".to_vec())
                },
                |code| Ok(code.clone()),
                |path| {
                    let code = std::fs::read(path)?;
                    wasmtime::ensure!(code == b"code", "not what was written");
                    Ok(code)
                },
            )
        };
        assert_eq!(get().unwrap(), b"code");
        assert_eq!(get().unwrap(), b"code");
        assert_eq!(compile_count.get(), 1);
        // A file cut short is compiled again, and replaced.
        std::fs::write(cache.path(b"some module"), b"co").unwrap();
        assert_eq!(get().unwrap(), b"code");
        assert_eq!(compile_count.get(), 2);
        assert_eq!(std::fs::read(cache.path(b"some module")).unwrap(), b"code");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
