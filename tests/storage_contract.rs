//! One storage contract, two implementations: the same test body runs against a local folder and
//! against a real rclone remote (`rclone serve s3` on loopback).

use crate::support;

use dbstash::plan::RcloneConf;
use dbstash::proc::ProcGroup;
use dbstash::storage::local::LocalStorage;
use dbstash::storage::rclone::RcloneStorage;
use dbstash::storage::Storage;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Bytes that do not compress or repeat: a few MiB, so an rclone upload to S3 goes multipart.
fn payload(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn names(entries: &[dbstash::storage::Entry]) -> Vec<String> {
    entries.iter().map(|e| e.name.clone()).collect()
}

/// The contract. `base` is a folder unique to this run; `stored` lists what really is in the
/// backing store (for checks that must not trust `list` alone).
async fn contract<S: Storage>(store: &S, base: &str, stored: impl Fn() -> Vec<String>) {
    let k = |rel: &str| format!("{base}/{rel}");
    let group = ProcGroup::new();

    // A missing folder lists as empty, not as an error.
    let missing = store
        .list(&k("does/not/exist"))
        .await
        .expect("list missing");
    assert!(missing.is_empty(), "{missing:?}");

    // write_small / read_small round trip, overwrite replaces.
    store
        .write_small(&k("f/one.json"), b"{\"a\":1}")
        .await
        .expect("write_small");
    assert_eq!(
        store.read_small(&k("f/one.json")).await.expect("read"),
        b"{\"a\":1}"
    );
    store
        .write_small(&k("f/one.json"), b"{\"a\":22}")
        .await
        .expect("overwrite");
    assert_eq!(
        store.read_small(&k("f/one.json")).await.expect("read"),
        b"{\"a\":22}"
    );
    assert!(
        store.read_small(&k("f/nope.json")).await.is_err(),
        "reading a missing object must fail"
    );

    // list: only the files directly in the folder, with their sizes.
    store
        .write_small(&k("f/two.bin"), &[7u8; 1234])
        .await
        .expect("write two");
    store
        .write_small(&k("f/sub/deeper.txt"), b"hidden")
        .await
        .expect("write sub");
    let listed = store.list(&k("f")).await.expect("list");
    assert_eq!(names(&listed), ["one.json", "two.bin"], "{listed:?}");
    assert_eq!(listed[0].size, 8);
    assert_eq!(listed[1].size, 1234);
    assert!(
        listed.iter().all(|e| e.modified.is_some()),
        "list must report modification times (leftover detection needs them): {listed:?}"
    );

    // delete: removes, and deleting again (or something never there) succeeds.
    store.delete(&k("f/two.bin")).await.expect("delete");
    store.delete(&k("f/two.bin")).await.expect("delete again");
    store
        .delete(&k("never/was/here.bin"))
        .await
        .expect("delete missing");
    assert_eq!(
        names(&store.list(&k("f")).await.expect("list")),
        ["one.json"]
    );

    // begin_upload + commit: a streamed object, bigger than one S3 chunk.
    let data = payload(7 * 1024 * 1024 + 123);
    let mut up = store
        .begin_upload(&k("up/full.bin"), &group, Some(data.len() as u64))
        .await
        .expect("begin_upload");
    let mut w = up.take_writer().expect("writer");
    let d2 = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&d2).expect("write stream");
        // the relay hands its writer back; dropping it must not end the stream by itself
        drop(w);
    });
    writer.join().expect("writer thread");
    tokio::time::timeout(Duration::from_secs(60), up.commit())
        .await
        .expect("commit must not hang")
        .expect("commit");
    let listed = store.list(&k("up")).await.expect("list after commit");
    assert_eq!(names(&listed), ["full.bin"]);
    assert_eq!(listed[0].size, data.len() as u64);

    // open_read round trip: without a size, and with the size a record gives (a restore; the
    // daemon then skips its stat).
    for size in [None, Some(data.len() as u64)] {
        let mut dl = store
            .open_read(&k("up/full.bin"), size, &group)
            .await
            .expect("open_read");
        let mut back = Vec::new();
        tokio::task::block_in_place(|| dl.reader.read_to_end(&mut back)).expect("read stream");
        dl.finish().await.expect("download finished");
        assert!(
            back == data,
            "round trip with size {size:?} differs ({} bytes back)",
            back.len()
        );
    }

    // A record that says another size (the object was replaced): the object's own bytes, whole,
    // for the integrity check to judge; never a stream cut to the record's length.
    let mut dl = store
        .open_read(&k("up/full.bin"), Some(1_000), &group)
        .await
        .expect("open_read with another size");
    let mut back = Vec::new();
    tokio::task::block_in_place(|| dl.reader.read_to_end(&mut back)).expect("read stream");
    dl.finish().await.expect("download finished");
    assert!(back == data, "{} bytes back", back.len());

    // open_read of a missing object or of a folder fails (at open or at finish), never yields
    // data silently; also when a record gave a size.
    store
        .write_small(&k("up/folder/inner.bin"), b"inside")
        .await
        .expect("write inside a folder");
    for (key, size) in [
        ("up/missing.bin", None),
        ("up/missing.bin", Some(10)),
        ("up/folder", Some(6)),
    ] {
        match store.open_read(&k(key), size, &group).await {
            Err(_) => {}
            Ok(mut dl) => {
                let mut buf = Vec::new();
                let _ = tokio::task::block_in_place(|| dl.reader.read_to_end(&mut buf));
                assert!(buf.is_empty(), "{key} ({size:?}) gave {} bytes", buf.len());
                assert!(
                    dl.finish().await.is_err(),
                    "reading {key} ({size:?}) must fail"
                );
            }
        }
    }
    store
        .delete(&k("up/folder/inner.bin"))
        .await
        .expect("delete inside a folder");

    // begin_upload + abort: whatever was streamed is gone, from the listing and the backing store.
    for (name, len) in [("small.bin", 100_000usize), ("big.bin", 12 * 1024 * 1024)] {
        let key = k(&format!("ab/{name}"));
        let mut up = store
            .begin_upload(&key, &group, None)
            .await
            .expect("begin_upload");
        let mut w = up.take_writer().expect("writer");
        let part = payload(len);
        let t = std::thread::spawn(move || {
            // may fail with EPIPE once the upload is killed; that is fine
            let _ = w.write_all(&part);
            w
        });
        // give rclone time to start shipping parts
        let started = Instant::now();
        while !t.is_finished() && started.elapsed() < Duration::from_secs(3) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let tail = tokio::time::timeout(Duration::from_secs(30), up.abort(store, &key))
            .await
            .expect("abort must not hang");
        let _ = t.join();
        let _ = tail;
        let after = store.list(&k("ab")).await.expect("list after abort");
        assert!(after.is_empty(), "abort left {after:?}");
        let left: Vec<String> = stored()
            .into_iter()
            // the object, or an S3 multipart upload's parts (rclone serve s3 keeps them as
            // hidden `.rclone_temp_multipart_*` files until the upload is aborted)
            .filter(|p| p.contains(&format!("{base}/ab/")))
            .collect();
        assert!(left.is_empty(), "abort left in the backing store: {left:?}");
    }

    // Folders (directory-mode backups): copied up whole, listed as folders (never as files),
    // copied back byte for byte, deleted whole; deleting a missing folder succeeds.
    let local = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(local.path().join("sub")).expect("mkdir");
    std::fs::write(local.path().join("toc.dat"), b"PGDMP-ish").expect("write");
    std::fs::write(local.path().join("sub/3.dat"), payload(300_000)).expect("write");
    store
        .upload_dir(local.path(), &k("d/b1"), &group)
        .await
        .expect("upload_dir");
    assert_eq!(
        names(&store.list_folders(&k("d")).await.expect("folders")),
        ["b1"]
    );
    assert!(
        store.list(&k("d")).await.expect("list").is_empty(),
        "a folder is not a file"
    );
    assert!(store
        .list_folders(&k("nothing/here"))
        .await
        .expect("missing")
        .is_empty());
    let back = tempfile::tempdir().expect("tempdir");
    store
        .download_dir(&k("d/b1"), &back.path().join("x"), &group)
        .await
        .expect("download_dir");
    assert_eq!(
        std::fs::read(back.path().join("x/toc.dat")).expect("toc"),
        b"PGDMP-ish"
    );
    assert_eq!(
        std::fs::read(back.path().join("x/sub/3.dat")).expect("3.dat"),
        payload(300_000)
    );
    assert!(
        store
            .download_dir(&k("d/none"), &back.path().join("y"), &group)
            .await
            .is_err(),
        "downloading a missing folder must fail"
    );
    store.delete_dir(&k("d/b1")).await.expect("delete_dir");
    store
        .delete_dir(&k("d/b1"))
        .await
        .expect("delete_dir again");
    assert!(store
        .list_folders(&k("d"))
        .await
        .expect("folders")
        .is_empty());
    assert!(
        !stored().iter().any(|p| p.contains(&format!("{base}/d/"))),
        "{:?}",
        stored()
    );

    // Clean up what the contract created.
    for key in ["f/one.json", "f/sub/deeper.txt", "up/full.bin"] {
        store.delete(&k(key)).await.expect("cleanup");
    }
    assert!(store.list(&k("f")).await.expect("list").is_empty());
    assert!(store.list(&k("up")).await.expect("list").is_empty());
}

fn files_under(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.display().to_string());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_folder_meets_the_storage_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalStorage::new(dir.path().join("root"));
    let root = dir.path().join("root");
    contract(&store, "c1", || files_under(&root)).await;
    // No temp files of write_small left behind.
    let left = files_under(&root);
    assert!(left.is_empty(), "{left:?}");
}

/// The rclone contract, with the shared `rclone rcd` for the small calls (`per_call: false`) or
/// one rclone process per call (the fallback path).
async fn rclone_contract(per_call: bool) {
    let s3 = support::S3::start();
    if !support::require(s3.is_some(), "rclone serve s3") {
        return;
    }
    let s3 = s3.expect("s3");
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = s3.write_rclone_conf(&dir.path().join("rclone.conf"));
    let rconf = RcloneConf {
        binary: "rclone".into(),
        config_file: Some(conf),
        extra_args: vec![],
    };
    let store = RcloneStorage::new("t:bucket".into(), rconf.clone());
    let store = if per_call { store.per_call() } else { store };
    let bucket = s3.root.path().join("bucket");
    contract(&store, "c1", || files_under(&bucket)).await;
    let left = s3.objects();
    assert!(left.is_empty(), "{left:?}");
    let conf_s = dir.path().display().to_string();
    let daemons: Vec<String> = support::processes_with(&conf_s)
        .into_iter()
        .filter(|p| p.contains(" rcd "))
        .collect();
    if per_call {
        assert!(daemons.is_empty(), "per-call storage started {daemons:?}");
    } else {
        assert_eq!(daemons.len(), 1, "one shared rclone rcd: {daemons:?}");
        dbstash::storage::rcd::stop_for(&rconf);
    }
    // every rclone child of the contract is gone (the daemon once stopped)
    assert!(
        support::wait_until(Duration::from_secs(5), || support::processes_with(&conf_s)
            .is_empty()),
        "{:?}",
        support::processes_with(&conf_s)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_s3_remote_meets_the_storage_contract() {
    rclone_contract(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rclone_s3_remote_meets_the_storage_contract_one_process_per_call() {
    rclone_contract(true).await;
}
