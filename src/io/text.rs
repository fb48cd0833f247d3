//! Text files that may be gzip- or bgzip-compressed (detected by their magic bytes).

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read, Seek};
use std::os::fd::IntoRawFd;
use std::path::Path;

use rust_htslib::htslib;

/// Opens a text file for buffered reading, decompressing gzip/bgzip transparently.
///
/// # Errors
///
/// The I/O error of opening the file.
pub fn open(path: &Path) -> std::io::Result<Box<dyn BufRead + Send>> {
    let mut file = std::fs::File::open(path)?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic)?;
    file.rewind()?;
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            Decoder::new(file),
        )))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
    }
}

/// gzip and bgzip (many gzip members) decompression through htslib's BGZF reader.
pub struct Decoder {
    handle: Option<std::ptr::NonNull<htslib::BGZF>>,
    error: Option<String>,
}

impl Decoder {
    /// Takes ownership of an open file.
    pub fn new(file: std::fs::File) -> Self {
        let fd = file.into_raw_fd();
        let mode = CString::new("r").expect("static mode string; this is a bug");
        // SAFETY: fd is owned and handed to htslib, which closes it in bgzf_close.
        let raw = unsafe { htslib::bgzf_dopen(fd, mode.as_ptr()) };
        match std::ptr::NonNull::new(raw) {
            Some(handle) => Self {
                handle: Some(handle),
                error: None,
            },
            None => {
                // SAFETY: htslib did not take ownership.
                unsafe { libc::close(fd) };
                Self {
                    handle: None,
                    error: Some("not a gzip or bgzip file".into()),
                }
            }
        }
    }
}

impl std::io::Read for Decoder {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(handle) = self.handle else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                self.error.clone().unwrap_or_default(),
            ));
        };
        // SAFETY: valid handle and buffer.
        let n = unsafe {
            htslib::bgzf_read(
                handle.as_ptr(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        };
        if n < 0 {
            Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "corrupt or truncated gzip data",
            ))
        } else {
            Ok(n as usize)
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            // SAFETY: handle from bgzf_dopen, closed once.
            unsafe { htslib::bgzf_close(handle.as_ptr()) };
        }
    }
}

// SAFETY: the BGZF handle is owned and only used through `&mut self`.
unsafe impl Send for Decoder {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_open_plain_and_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.txt");
        std::fs::write(&plain, "line1\nline2\n").unwrap();
        let gz = dir.path().join("a.txt.gz");
        let out = std::process::Command::new("gzip")
            .arg("-c")
            .arg(&plain)
            .output()
            .unwrap();
        std::fs::write(&gz, out.stdout).unwrap();
        for p in [&plain, &gz] {
            let lines: Vec<String> = open(p).unwrap().lines().map(Result::unwrap).collect();
            assert_eq!(lines, ["line1", "line2"]);
        }
        let truncated = dir.path().join("t.gz");
        let bytes = std::fs::read(&gz).unwrap();
        std::fs::write(&truncated, &bytes[..bytes.len() - 6]).unwrap();
        let result: Result<Vec<String>, _> = open(&truncated).unwrap().lines().collect();
        assert!(result.is_err());
    }
}
