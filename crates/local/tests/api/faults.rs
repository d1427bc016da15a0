//! A full disk: every write answers 503 with a JSON message, never 202, stores nothing, and
//! the service recovers by itself when space is freed.

use std::{
    fs::File,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use serde_json::Value;
use storefirst_app::RestaurantOrders;
use storefirst_pipeline::Config;

use crate::{API_KEY, eventually};

/// A 4 MiB tmpfs, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
            .arg(at)
            .status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "this test mounts a 4 MiB tmpfs to fill the disk for real: run the tests as root (as CI does)"
        );
        Self(at.to_owned())
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.0.join("filler");
        let mut file = File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file
            .write_all(&chunk)
            .and_then(|()| file.sync_all())
            .is_ok()
        {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = privileged("umount").arg("-l").arg(&self.0).status();
    }
}

/// `program` as root: directly when we are root, else through passwordless sudo.
fn privileged(program: &str) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"));
    if root {
        Command::new(program)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", program]);
        sudo
    }
}

async fn put(client: &reqwest::Client, base: &str, id: &str, body: &str) -> (u16, Value) {
    let response = client
        .put(format!("{base}/requests/{id}"))
        .header("x-api-key", API_KEY)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn get_status(client: &reqwest::Client, base: &str, id: &str) -> u16 {
    let response = client
        .get(format!("{base}/requests/{id}"))
        .header("x-api-key", API_KEY)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_gives_503_never_202_and_the_service_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(&dir.path().join("disk"));
    let config = Config::new(
        disk.0.join("full.db"),
        ([127, 0, 0, 1], 0).into(),
        API_KEY.into(),
    );
    let runtime = storefirst_sqlite::start(config, std::sync::Arc::new(RestaurantOrders))
        .await
        .unwrap();
    let base = format!("http://{}", runtime.addr());
    let client = reqwest::Client::new();
    let big = format!(
        r#"{{"restaurant":"Roma","items":[{{"dish":"espresso","quantity":1}}],"note":"{}"}}"#,
        "n".repeat(200_000)
    );
    assert_eq!(put(&client, &base, "before", &big).await.0, 202);

    let filler = disk.fill();
    let (mut accepted, mut refused) = (Vec::new(), Vec::new());
    for i in 0..60 {
        let id = format!("during-{i}");
        let (status, body) = put(&client, &base, &id, &big).await;
        match status {
            202 => accepted.push(id),
            503 => {
                let message = body["message"].as_str().unwrap();
                assert!(
                    message.contains("disk is full") && message.contains("nothing was stored"),
                    "{body}"
                );
                refused.push(id);
            }
            other => panic!("{other} {body}"),
        }
        if refused.len() >= 5 {
            break;
        }
    }
    assert!(
        refused.len() >= 5,
        "the full disk never refused a write ({} accepted)",
        accepted.len()
    );

    println!(
        "disk full: {} accepted, {} refused with 503",
        accepted.len(),
        refused.len()
    );
    std::fs::remove_file(filler).unwrap();
    eventually(Duration::from_secs(20), "writes succeed again", || async {
        put(&client, &base, "after", &big).await.0 == 202
    })
    .await;
    for id in &refused {
        assert_eq!(
            get_status(&client, &base, id).await,
            404,
            "{id} was refused but stored"
        );
    }
    for id in accepted
        .iter()
        .chain([&"before".to_owned(), &"after".to_owned()])
    {
        assert_eq!(
            get_status(&client, &base, id).await,
            200,
            "{id} was accepted but is missing"
        );
    }
    runtime.shutdown().await;
}
