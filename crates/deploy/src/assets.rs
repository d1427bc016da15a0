//! Assets: files the template needs (the function zips), named by their content hash and
//! uploaded to the assets bucket only when absent.

use std::path::PathBuf;

use aws_sdk_s3::{operation::head_object::HeadObjectError, primitives::ByteStream};
use sha2::{Digest, Sha256};

use crate::{Aws, Console, Error, aws::failed};

/// A file the template needs in the assets bucket: its S3 key goes into `parameter`.
#[derive(Debug, Clone)]
pub struct Asset {
    pub parameter: String,
    pub path: PathBuf,
}

/// An asset read from disk, named by its content.
pub(crate) struct Staged {
    pub parameter: String,
    pub label: String,
    pub key: String,
    pub bytes: Vec<u8>,
}

impl Asset {
    /// Reads the file and names it `<sha256>.<extension>`: a rebuild with the same bytes
    /// gives the same key, so an unchanged function is neither uploaded nor updated.
    pub(crate) fn stage(&self) -> Result<Staged, Error> {
        let bytes = std::fs::read(&self.path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::MissingAsset {
                    path: self.path.clone(),
                }
            } else {
                Error::File {
                    action: "read",
                    path: self.path.clone(),
                    source,
                }
            }
        })?;
        let extension = self
            .path
            .extension()
            .map_or(String::new(), |e| format!(".{}", e.to_string_lossy()));
        Ok(Staged {
            parameter: self.parameter.clone(),
            label: self.path.display().to_string(),
            key: format!("assets/{}{extension}", sha256_hex(&bytes)),
            bytes,
        })
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Uploads `bytes` under `key` unless the bucket has it already.
pub(crate) async fn put_if_absent(
    aws: &Aws,
    bucket: &str,
    key: &str,
    bytes: &[u8],
    label: &str,
    console: &Console,
) -> Result<(), Error> {
    match aws.s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => {
            console.note(format!("{label}: already in s3://{bucket}/{key}"));
            return Ok(());
        }
        Err(error) if matches!(error.as_service_error(), Some(HeadObjectError::NotFound(_))) => {}
        Err(error) => return Err(failed("S3 HeadObject")(error)),
    }
    console.note(format!(
        "{label}: uploading {} bytes to s3://{bucket}/{key}",
        bytes.len()
    ));
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(bytes.to_vec()))
        .send()
        .await
        .map_err(failed("S3 PutObject"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_asset_is_named_by_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bootstrap.zip");
        std::fs::write(&path, b"abc").unwrap();
        let staged = Asset {
            parameter: "CodeKey".into(),
            path,
        }
        .stage()
        .unwrap();
        // sha256("abc"), from FIPS 180-2's test vectors.
        assert_eq!(
            staged.key,
            "assets/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.zip"
        );
        assert_eq!(staged.parameter, "CodeKey");
    }

    #[test]
    fn a_missing_zip_says_to_build_it() {
        let error = Asset {
            parameter: "CodeKey".into(),
            path: "target/lambda/nothing/bootstrap.zip".into(),
        }
        .stage()
        .err()
        .expect("a missing file is an error");
        assert!(matches!(error, Error::MissingAsset { .. }));
        assert!(error.to_string().contains("cargo xtask build"), "{error}");
    }
}
