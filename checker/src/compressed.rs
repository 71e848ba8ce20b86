//! Histories kept as zstd once checked: a run folder's `history.jsonl`
//! becomes `history.jsonl.zst` after its verdict is written (a 30 s run's
//! history shrinks about tenfold), and every reader takes either form.
//!
//! Compression is atomic: the `.zst` is written under a temporary name,
//! flushed to disk, renamed into place, and only then is the plain file
//! removed, so a crash at any point leaves at least one whole history.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The suffix of a compressed file.
pub const SUFFIX: &str = "zst";

/// zstd level: 3 is zstd's own default, a good ratio at hundreds of MB/s,
/// so compressing never adds noticeably to a run.
pub const LEVEL: i32 = 3;

/// True when `path` names a zstd file (by its extension).
pub fn is_compressed(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some(SUFFIX)
}

/// `path` with `.zst` appended (`history.jsonl` -> `history.jsonl.zst`).
pub fn compressed_name(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(SUFFIX);
    PathBuf::from(s)
}

/// The file name inside a `.zst` (`a/h.edn.zst` -> `h.edn`, only for
/// guessing the format: the folder is dropped); other paths as they are.
pub fn inner_name(path: &Path) -> &Path {
    if is_compressed(path) {
        path.file_stem().map(Path::new).unwrap_or(path)
    } else {
        path
    }
}

/// Which of `plain` and `plain.zst` exists: the plain file first (a run
/// still being written, or a user's decompressed copy), then the
/// compressed one; `plain` when neither does, so errors name the usual file.
pub fn existing(plain: &Path) -> PathBuf {
    if plain.exists() {
        return plain.to_path_buf();
    }
    let z = compressed_name(plain);
    if z.exists() {
        z
    } else {
        plain.to_path_buf()
    }
}

/// Opens `path` for reading, decompressing on the fly when it is `.zst`.
pub fn open(path: &Path) -> io::Result<Box<dyn Read>> {
    let f = File::open(path)?;
    if is_compressed(path) {
        Ok(Box::new(zstd::stream::read::Decoder::new(f)?))
    } else {
        Ok(Box::new(f))
    }
}

/// The whole content of `path`, decompressed when `.zst`.
pub fn read_all(path: &Path) -> io::Result<Vec<u8>> {
    let (bytes, err) = read_prefix(path)?;
    match err {
        None => Ok(bytes),
        Some(e) => Err(e),
    }
}

/// As much of `path` as can be read: the bytes decompressed before a
/// truncated or corrupt `.zst` stops decoding, and that error. A plain file
/// is read whole. Opening errors are returned as such.
pub fn read_prefix(path: &Path) -> io::Result<(Vec<u8>, Option<io::Error>)> {
    let mut r = open(path)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok((out, None)),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let e = io::Error::new(
                    e.kind(),
                    format!("{} is truncated or corrupt: {e}", path.display()),
                );
                return Ok((out, Some(e)));
            }
        }
    }
}

/// What [`compress_file`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compressed {
    /// Bytes of the plain file.
    pub before: u64,
    /// Bytes of the `.zst`.
    pub after: u64,
}

/// Replaces `plain` by `plain.zst`: writes the compressed copy under a
/// temporary name, fsyncs it, renames it into place, fsyncs the folder, and
/// only then removes `plain`. Returns the sizes before and after.
pub fn compress_file(plain: &Path) -> io::Result<Compressed> {
    let target = compressed_name(plain);
    let tmp = {
        let mut s = target.as_os_str().to_owned();
        s.push(".tmp");
        PathBuf::from(s)
    };
    let before = std::fs::metadata(plain)?.len();
    let result = (|| -> io::Result<()> {
        let mut input = File::open(plain)?;
        let out = File::create(&tmp)?;
        let mut enc = zstd::stream::write::Encoder::new(out, LEVEL)?;
        io::copy(&mut input, &mut enc)?;
        let mut out = enc.finish()?;
        out.flush()?;
        out.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        sync_parent(&target)
    })();
    if let Err(e) = result {
        // The plain history is untouched; leave no half-written copy.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::remove_file(plain)?;
    // The removal itself need not survive a crash: both files are whole.
    let after = std::fs::metadata(&target)?.len();
    Ok(Compressed { before, after })
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("{{\"index\":{i},\"type\":\"invoke\",\"f\":\"read\"}}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn compressing_replaces_the_plain_file_and_reads_back_identical() {
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("history.jsonl");
        let text = lines(5000);
        std::fs::write(&plain, &text).unwrap();
        let c = compress_file(&plain).unwrap();
        assert!(!plain.exists(), "the plain history is removed");
        let z = d.path().join("history.jsonl.zst");
        assert!(z.is_file());
        assert_eq!(c.before, text.len() as u64);
        assert!(c.after < c.before / 5, "{c:?}");
        assert_eq!(read_all(&z).unwrap(), text);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("history.jsonl.zst")]);
    }

    #[test]
    fn existing_prefers_the_plain_file_then_the_compressed_one() {
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("history.jsonl");
        assert_eq!(existing(&plain), plain, "neither: the plain name");
        std::fs::write(compressed_name(&plain), b"").unwrap();
        assert_eq!(existing(&plain), compressed_name(&plain));
        std::fs::write(&plain, b"").unwrap();
        assert_eq!(existing(&plain), plain);
    }

    #[test]
    fn a_truncated_zst_yields_its_readable_prefix_and_an_error_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let plain = d.path().join("history.jsonl");
        // Several 128 KiB zstd blocks, yet small: memory::tests measures
        // this process's resident set while tests run side by side.
        let text = lines(20_000);
        std::fs::write(&plain, &text).unwrap();
        compress_file(&plain).unwrap();
        let z = compressed_name(&plain);
        let bytes = std::fs::read(&z).unwrap();
        std::fs::write(&z, &bytes[..bytes.len() / 2]).unwrap();
        let (prefix, err) = read_prefix(&z).unwrap();
        let err = err.expect("a cut-off frame is an error");
        assert!(err.to_string().contains("truncated or corrupt"), "{err}");
        assert!(err.to_string().contains("history.jsonl.zst"), "{err}");
        assert!(prefix.len() < text.len());
        assert_eq!(
            prefix[..],
            text[..prefix.len()],
            "the prefix is the history's"
        );
        assert!(read_all(&z).is_err());
    }

    #[test]
    fn inner_name_strips_only_the_zst_suffix() {
        assert_eq!(inner_name(Path::new("a/h.edn.zst")), Path::new("h.edn"));
        assert_eq!(inner_name(Path::new("a/h.jsonl")), Path::new("a/h.jsonl"));
    }
}
