//! What every [`JobStore`] (and [`ServiceStore`]) must do, as checks run against each
//! implementation: pool-core's `MemoryStore` (the reference), SQLite (file and memory) and
//! PostgreSQL. [`job_store_conformance!`] and [`service_store_conformance!`] make one test per
//! check for a store made by the given async expression.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use pool_core::{
    Blob, JobQuery, JobRecord, JobState, JobStore, StoreError, Timestamp, Transition, WorkflowHash,
};
use pool_store::{ApiKey, ServiceStore, WebhookDelivery, WebhookState};
use serde_json::json;

use super::records::{
    a_successful_run, advance, at, block, completed, dispatched, job, job_with_input,
};

/// Inserting stores the record; inserting the id again returns the stored one and writes
/// nothing.
pub async fn insert_get_and_idempotent_insert(store: &dyn JobStore) {
    let first = job("job-1", Some("acme"), at(1));
    assert_eq!(store.insert(&first).await.unwrap(), None);
    assert_eq!(store.get("job-1").await.unwrap(), Some(first.clone()));

    let other = job("job-1", Some("other"), at(2));
    assert_eq!(store.insert(&other).await.unwrap(), Some(first.clone()));
    assert_eq!(store.get("job-1").await.unwrap(), Some(first));
    assert_eq!(store.get("job-2").await.unwrap(), None);
}

/// Inserts sent together (one statement in a SQL store that can) end as one after the
/// other: the new jobs are stored and taken in the order sent (acceptance order, ids not in
/// order), one already stored answers the stored record and changes nothing; and an insert
/// of an id already in the same group answers the first.
pub async fn inserts_sent_together_end_as_in_sequence(store: &dyn JobStore) {
    let stored = job("job-m", Some("acme"), at(1));
    store.insert(&stored).await.unwrap();
    let together = |ids: &[&str], from: u64| -> Vec<JobRecord> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| job(id, Some(&format!("t{i}")), at(from + i as u64)))
            .collect()
    };
    let first = together(&["job-z", "job-m", "job-a", "job-q"], 10);
    assert_eq!(
        insert_together(store, &first).await,
        vec![None, Some(stored.clone()), None, None]
    );
    let second = together(&["job-b", "job-b"], 20);
    assert_eq!(
        insert_together(store, &second).await,
        vec![None, Some(second[0].clone())]
    );
    for expected in [&first[0], &first[2], &first[3], &second[0]] {
        assert_eq!(
            store.get(expected.id.as_str()).await.unwrap().as_ref(),
            Some(expected)
        );
    }
    assert_eq!(store.get("job-m").await.unwrap(), Some(stored));
    let order: Vec<String> = store
        .unfinished()
        .await
        .unwrap()
        .iter()
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(order, ["job-m", "job-z", "job-a", "job-q", "job-b"]);
}

/// Inserts `records` at once (each sent before any is answered); their answers in order.
async fn insert_together(store: &dyn JobStore, records: &[JobRecord]) -> Vec<Option<JobRecord>> {
    futures_util::future::join_all(records.iter().map(|r| store.insert(r)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// Several records read at once are those stored, each as `get` reads it; unknown ids are
/// left out; more ids than one query takes are read all the same.
pub async fn get_many_reads_what_get_reads(store: &dyn JobStore) {
    let mut ids = Vec::new();
    for i in 0..3 {
        let record = job(&format!("many-{i}"), None, at(i + 1));
        store.insert(&record).await.unwrap();
        ids.push(record.id.clone());
    }
    ids.insert(1, "missing".into());
    // 600 unknown ids after them: more than one query's worth.
    ids.extend((0..600).map(|i| pool_core::JobId::from(format!("absent-{i}"))));
    let mut got = store.get_many(&ids).await.unwrap();
    got.sort_by(|a, b| a.id.cmp(&b.id));
    let mut expected = Vec::new();
    for i in 0..3 {
        expected.push(store.get(&format!("many-{i}")).await.unwrap().unwrap());
    }
    assert_eq!(got, expected);
    assert!(store.get_many(&[]).await.unwrap().is_empty());
}

/// An update is a compare-and-set on the version: the next version is taken, a stale or
/// skipped one is a conflict, an unknown job is not found.
pub async fn update_is_compare_and_set(store: &dyn JobStore) {
    let mut record = job("job-1", None, at(1));
    store.insert(&record).await.unwrap();
    advance(store, &mut record, &dispatched("gpu-1", at(2)), at(2)).await;
    assert_eq!(record.version, 2);
    assert_eq!(store.get("job-1").await.unwrap(), Some(record.clone()));

    // The same change again: the store is at 2 already.
    let again = store.update(&record, &Transition::CancelRequested).await;
    assert_eq!(
        again,
        Err(StoreError::Conflict {
            id: "job-1".into(),
            stored: 2,
            expected: 1
        })
    );
    // A change that skips a version.
    let mut ahead = record.clone();
    ahead.apply(&Transition::CancelRequested, at(3));
    ahead.apply(&Transition::PromptSubmitted { attempt: 1 }, at(3));
    assert!(matches!(
        store.update(&ahead, &Transition::CancelRequested).await,
        Err(StoreError::Conflict {
            stored: 2,
            expected: 3,
            ..
        })
    ));
    assert_eq!(store.get("job-1").await.unwrap(), Some(record.clone()));

    let mut missing = job("job-9", None, at(1));
    missing.apply(&Transition::CancelRequested, at(2));
    assert_eq!(
        store.update(&missing, &Transition::CancelRequested).await,
        Err(StoreError::NotFound("job-9".into()))
    );

    // A whole run, each transition on the one before.
    for (i, t) in a_successful_run("job-1", at(3)).iter().enumerate().skip(1) {
        advance(store, &mut record, t, at(3 + i as u64)).await;
    }
    let stored = store.get("job-1").await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Completed);
    assert_eq!(stored, record);
}

/// Unfinished jobs come back in acceptance order, finished ones not at all.
pub async fn unfinished_in_acceptance_order(store: &dyn JobStore) {
    let mut records: Vec<JobRecord> = (0..6)
        .map(|i| job(&format!("job-{}", 9 - i), None, at(10 * i)))
        .collect();
    for record in &records {
        store.insert(record).await.unwrap();
    }
    let done = completed(records[1].id.as_str(), None);
    advance(store, &mut records[1], &done, at(100)).await;
    let cancelled = Transition::Finished {
        outcome: Err(pool_core::Error::Cancelled),
    };
    advance(store, &mut records[4], &cancelled, at(100)).await;
    advance(
        store,
        &mut records[2],
        &dispatched("gpu-1", at(100)),
        at(100),
    )
    .await;
    let retry = Transition::RetryScheduled {
        delay: std::time::Duration::from_secs(1),
    };
    advance(store, &mut records[3], &retry, at(100)).await;

    let unfinished = store.unfinished().await.unwrap();
    let expected: Vec<JobRecord> = [0, 2, 3, 5].iter().map(|&i| records[i].clone()).collect();
    assert_eq!(unfinished, expected);
}

/// Listing: newest first, filtered by tenant and state, a page at a time with no job twice
/// and none left out.
pub async fn list_filters_and_pages(store: &dyn JobStore) {
    let mut all = Vec::new();
    for i in 0..23u64 {
        // Pairs share a millisecond: the id orders them (byte order: upper case first).
        let id = if i % 2 == 0 {
            format!("Job-{i:02}")
        } else {
            format!("job-{i:02}")
        };
        let tenant = if i % 3 == 0 { "beta" } else { "acme" };
        let mut record = job(&id, Some(tenant), at(i / 2));
        store.insert(&record).await.unwrap();
        if i % 4 == 0 {
            let done = completed(&id, None);
            advance(store, &mut record, &done, at(50)).await;
        }
        all.push(record);
    }
    all.sort_by(|a, b| (b.created_at, b.id.as_str()).cmp(&(a.created_at, a.id.as_str())));

    let pages = |query: JobQuery| async move {
        let mut seen = Vec::new();
        let mut query = query;
        loop {
            let page = store.list(&query).await.unwrap();
            assert!(page.jobs.len() <= query.limit as usize);
            seen.extend(page.jobs);
            match page.next {
                Some(cursor) => query = query.after(cursor),
                None => return seen,
            }
        }
    };
    let ids = |records: &[JobRecord]| -> Vec<String> {
        records.iter().map(|r| r.id.to_string()).collect()
    };

    let listed = pages(JobQuery::new(4)).await;
    assert_eq!(ids(&listed), ids(&all));
    assert_eq!(listed, all, "records come back whole");

    let acme = pages(JobQuery::new(3).tenant("acme")).await;
    let expected: Vec<JobRecord> = all
        .iter()
        .filter(|r| r.tenant() == Some("acme"))
        .cloned()
        .collect();
    assert_eq!(ids(&acme), ids(&expected));

    let done = pages(JobQuery::new(2).states([JobState::Completed])).await;
    let expected: Vec<JobRecord> = all
        .iter()
        .filter(|r| r.state == JobState::Completed)
        .cloned()
        .collect();
    assert_eq!(ids(&done), ids(&expected));

    let query = JobQuery::new(5)
        .tenant("beta")
        .states([JobState::Queued, JobState::Completed]);
    let beta = pages(query).await;
    let expected: Vec<JobRecord> = all
        .iter()
        .filter(|r| r.tenant() == Some("beta"))
        .cloned()
        .collect();
    assert_eq!(ids(&beta), ids(&expected));

    let one = store.list(&JobQuery::new(23)).await.unwrap();
    assert_eq!((one.jobs.len(), one.next), (23, None));
    let nobody = store
        .list(&JobQuery::new(5).tenant("nobody"))
        .await
        .unwrap();
    assert!(nobody.jobs.is_empty() && nobody.next.is_none());
    assert!(matches!(
        store.list(&JobQuery::new(5).after("yesterday")).await,
        Err(StoreError::Config(_))
    ));
}

/// Blobs: stored once per content, bytes back by key; a reference without bytes is refused.
pub async fn blobs_by_content(store: &dyn JobStore) {
    let blob = Blob::new(b"\x89PNG fake image".to_vec());
    store.put_blob(&blob).await.unwrap();
    store.put_blob(&blob).await.unwrap();
    assert_eq!(
        store.get_blob(&blob.key()).await.unwrap(),
        Some(Bytes::from_static(b"\x89PNG fake image"))
    );
    assert_eq!(store.get_blob(&"0".repeat(64)).await.unwrap(), None);

    let reference: Blob = serde_json::from_value(serde_json::to_value(&blob).unwrap()).unwrap();
    assert!(store.put_blob(&reference).await.is_err());
}

/// Failover states: written, replaced, removed, listed.
pub async fn blocks_put_replace_remove(store: &dyn JobStore) {
    // Structurally different workflows (widget values do not change a structural hash).
    let (h1, h2) = (
        WorkflowHash::of(&super::records::workflow(1)).unwrap(),
        WorkflowHash::of(&json!({"1": {"class_type": "EmptyImage", "inputs": {"width": 8}}}))
            .unwrap(),
    );
    let sorted = |mut blocks: Vec<pool_core::StoredBlock>| {
        blocks.sort_by(|a, b| (a.server.as_str(), a.hash).cmp(&(b.server.as_str(), b.hash)));
        blocks
    };
    assert!(store.blocks().await.unwrap().is_empty());
    store
        .put_block(&block("gpu-1", &h1, 2, Some(60_000)))
        .await
        .unwrap();
    store
        .put_block(&block("gpu-2", &h1, 1, None))
        .await
        .unwrap();
    store
        .put_block(&block("gpu-1", &h2, 3, None))
        .await
        .unwrap();
    store
        .put_block(&block("gpu-1", &h1, 4, None))
        .await
        .unwrap();
    assert_eq!(
        sorted(store.blocks().await.unwrap()),
        sorted(vec![
            block("gpu-1", &h1, 4, None),
            block("gpu-1", &h2, 3, None),
            block("gpu-2", &h1, 1, None),
        ])
    );
    store.remove_block(&"gpu-1".into(), &h1).await.unwrap();
    store.remove_block(&"gpu-9".into(), &h1).await.unwrap();
    assert_eq!(
        sorted(store.blocks().await.unwrap()),
        sorted(vec![
            block("gpu-1", &h2, 3, None),
            block("gpu-2", &h1, 1, None)
        ])
    );
    let until = store.blocks().await.unwrap();
    assert!(until.iter().all(|b| b.until.is_none()));
    store
        .put_block(&block("gpu-3", &h2, 2, Some(9)))
        .await
        .unwrap();
    let stored = store.blocks().await.unwrap();
    let gpu3 = stored
        .iter()
        .find(|b| b.server.as_str() == "gpu-3")
        .unwrap();
    assert_eq!(gpu3.until, Some(at(9)));
}

/// Purge: finished jobs older than the cut and beyond the newest `keep` go, unfinished ones
/// never; blobs no remaining job refers to go, referenced ones stay.
pub async fn purge_by_age_and_count(store: &dyn JobStore) {
    let (input_a, input_b) = (Blob::new(&b"input a"[..]), Blob::new(&b"input b"[..]));
    let (image_c, orphan_d) = (Blob::new(&b"ws image c"[..]), Blob::new(&b"orphan d"[..]));
    for blob in [&input_a, &input_b, &image_c, &orphan_d] {
        store.put_blob(blob).await.unwrap();
    }
    // An unfinished job, older than the cut, referring to blob a.
    let queued = job_with_input("queued", at(3), b"input a");
    store.insert(&queued).await.unwrap();
    // Two old finished jobs; old-1 refers to blob b.
    let mut old1 = job_with_input("old-1", at(1), b"input b");
    let mut old2 = job("old-2", None, at(2));
    // Three recent finished jobs; new-3's result carries image c.
    let mut new = [
        job("new-1", None, at(4)),
        job("new-2", None, at(5)),
        job("new-3", None, at(6)),
    ];
    for record in [&old1, &old2].into_iter().chain(new.iter()) {
        store.insert(record).await.unwrap();
    }
    advance(store, &mut old1, &completed("old-1", None), at(10)).await;
    let cancelled = Transition::Finished {
        outcome: Err(pool_core::Error::Cancelled),
    };
    advance(store, &mut old2, &cancelled, at(20)).await;
    for (i, record) in new.iter_mut().enumerate() {
        let image = (i == 2).then_some(&image_c);
        let done = completed(record.id.as_str(), image);
        advance(store, record, &done, at(1000 + i as u64)).await;
    }

    // Age removes old-1 and old-2; keeping 2 removes new-1 too.
    assert_eq!(store.purge(at(500), 2).await.unwrap(), 3);
    let mut left = Vec::new();
    for id in ["queued", "old-1", "old-2", "new-1", "new-2", "new-3"] {
        if store.get(id).await.unwrap().is_some() {
            left.push(id);
        }
    }
    assert_eq!(left, ["queued", "new-2", "new-3"]);
    assert_eq!(store.get("new-3").await.unwrap(), Some(new[2].clone()));
    let present = |blob: Blob| async move { store.get_blob(&blob.key()).await.unwrap().is_some() };
    assert!(
        present(input_a.clone()).await,
        "referenced by an unfinished job"
    );
    assert!(!present(input_b.clone()).await, "its job was purged");
    assert!(
        present(image_c.clone()).await,
        "referenced by a kept result"
    );
    assert!(!present(orphan_d.clone()).await, "never referenced");

    // Nothing more is old enough; keeping none removes every finished job.
    assert_eq!(store.purge(at(500), 5).await.unwrap(), 0);
    assert_eq!(store.purge(Timestamp::EPOCH, 0).await.unwrap(), 2);
    assert_eq!(
        store.unfinished().await.unwrap(),
        vec![queued.clone()],
        "the unfinished job stays"
    );
    assert!(!present(image_c).await);
    assert!(present(input_a).await);
}

/// 64 tasks inserting and updating at once (grouped into shared commits by a SQL store)
/// lose nothing and keep each job's order, also for updates sent back to back.
pub async fn concurrent_writers_lose_nothing(store: Arc<dyn JobStore>) {
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..64u64 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let id = format!("job-{t:02}");
            let mut record = job(&id, Some(if t % 2 == 0 { "a" } else { "b" }), at(t));
            assert_eq!(store.insert(&record).await.unwrap(), None);
            let run = a_successful_run(&id, at(100));
            let (first, rest) = run.split_at(2);
            for (i, transition) in first.iter().enumerate() {
                advance(&*store, &mut record, transition, at(100 + i as u64)).await;
            }
            // Two updates sent without waiting for the first: the second follows the first.
            let (mut second, mut third) = (record.clone(), record.clone());
            second.apply(&rest[0], at(110));
            third.apply(&rest[0], at(110));
            third.apply(&rest[1], at(111));
            let (a, b) = tokio::join!(
                store.update(&second, &rest[0]),
                store.update(&third, &rest[1])
            );
            a.unwrap();
            b.unwrap();
            record = third;
            advance(&*store, &mut record, &rest[2], at(120)).await;
            record
        });
    }
    let mut finished = Vec::new();
    while let Some(record) = tasks.join_next().await {
        finished.push(record.unwrap());
    }
    finished.sort_by_key(|r| r.created_at);
    assert_eq!(finished.len(), 64);
    for record in &finished {
        assert_eq!(record.version, 6);
        assert_eq!(
            store.get(record.id.as_str()).await.unwrap().as_ref(),
            Some(record)
        );
    }
    assert!(store.unfinished().await.unwrap().is_empty());
    let listed = store.list(&JobQuery::new(1000)).await.unwrap().jobs;
    let ids: HashSet<_> = listed.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids.len(), 64);
}

/// Updates sent together (one group, one statement in a SQL store) end as they would one
/// after the other: a job's chain of versions is taken whole; a stale write and the writes
/// chained on it are conflicts, each with its own expected version; an unknown job's writes
/// are not found; the other jobs of the group are not affected.
pub async fn updates_sent_together_end_as_in_sequence(store: &dyn JobStore) {
    let base: Vec<JobRecord> = ["chain", "stale", "single"]
        .iter()
        .map(|id| job(id, None, at(1)))
        .collect();
    for record in &base {
        store.insert(record).await.unwrap();
    }
    let run = a_successful_run("chain", at(2));
    // chain: versions 2, 3 and 4, back to back.
    let mut chain = Vec::new();
    let mut record = base[0].clone();
    for (i, t) in run.iter().enumerate().take(3) {
        record.apply(t, at(2 + i as u64));
        chain.push((record.clone(), t.clone()));
    }
    // stale: a write of version 3 (the store holds 1), then version 4 on it.
    let mut stale = base[1].clone();
    stale.apply(&Transition::CancelRequested, at(2));
    stale.apply(&Transition::CancelRequested, at(3));
    let stale_first = stale.clone();
    stale.apply(&Transition::CancelRequested, at(4));
    // missing: never inserted.
    let mut missing = job("missing", None, at(1));
    missing.apply(&Transition::CancelRequested, at(2));
    let missing_first = missing.clone();
    missing.apply(&Transition::CancelRequested, at(3));
    let mut single = base[2].clone();
    single.apply(&Transition::CancelRequested, at(2));

    let cancel = Transition::CancelRequested;
    let writes: Vec<(&JobRecord, &Transition)> = vec![
        (&chain[0].0, &chain[0].1),
        (&stale_first, &cancel),
        (&missing_first, &cancel),
        (&chain[1].0, &chain[1].1),
        (&stale, &cancel),
        (&single, &cancel),
        (&missing, &cancel),
        (&chain[2].0, &chain[2].1),
    ];
    let results =
        futures_util::future::join_all(writes.iter().map(|(r, t)| store.update(r, t))).await;
    let conflict = |stored, expected| {
        Err(StoreError::Conflict {
            id: "stale".into(),
            stored,
            expected,
        })
    };
    let not_found = || Err(StoreError::NotFound("missing".into()));
    assert_eq!(
        results,
        vec![
            Ok(()),
            conflict(1, 2),
            not_found(),
            Ok(()),
            conflict(1, 3),
            Ok(()),
            not_found(),
            Ok(()),
        ]
    );
    assert_eq!(
        store.get("chain").await.unwrap().as_ref(),
        Some(&chain[2].0)
    );
    assert_eq!(store.get("stale").await.unwrap().as_ref(), Some(&base[1]));
    assert_eq!(store.get("single").await.unwrap(), Some(single));
    assert_eq!(store.get("missing").await.unwrap(), None);
}

/// A chain of a job's transitions is one write, all or none: taken when the stored version
/// is the chain's first, refused whole otherwise (nothing of it stored), refused empty; and
/// chains sent together with another job's chain and single updates end as each would alone.
pub async fn a_chain_of_transitions_is_all_or_none(store: &dyn JobStore) {
    let run = a_successful_run("a", at(2));
    let mut a = job("a", None, at(1));
    let mut b = job("b", None, at(1));
    store.insert(&a).await.unwrap();
    store.insert(&b).await.unwrap();

    // a: dispatched alone, then submitted, executing, ended and completed as one chain.
    advance(store, &mut a, &run[0], at(2)).await;
    let mut after = a.clone();
    for (i, t) in run[1..].iter().enumerate() {
        assert!(after.apply(t, at(3 + i as u64)));
    }
    // The same chain on a version the store does not hold: refused whole.
    let mut skipped = after.clone();
    skipped.version += 1;
    assert_eq!(
        store.update_chain(&skipped, &run[1..]).await,
        Err(StoreError::Conflict {
            id: "a".into(),
            stored: 2,
            expected: 3
        })
    );
    assert_eq!(
        store.update_chain(&after, &[]).await,
        Err(StoreError::Rejected(
            "an update of job a without a transition".into()
        ))
    );
    assert_eq!(store.get("a").await.unwrap().as_ref(), Some(&a));

    // b: a chain of two whose first the store misses (it holds 1; the chain follows 2).
    let cancel = Transition::CancelRequested;
    let mut stale = b.clone();
    for i in 0..3 {
        stale.apply(&cancel, at(2 + i));
    }
    // Sent together: a's chain, b's stale chain, and b's right single update.
    let mut single = b.clone();
    single.apply(&cancel, at(2));
    let chain_a = store.update_chain(&after, &run[1..]);
    let two = [cancel.clone(), cancel.clone()];
    let chain_b = store.update_chain(&stale, &two);
    let one_b = store.update(&single, &cancel);
    let (ra, rb, rc) = tokio::join!(chain_a, chain_b, one_b);
    assert_eq!(ra, Ok(()));
    assert_eq!(
        rb,
        Err(StoreError::Conflict {
            id: "b".into(),
            stored: 1,
            expected: 2
        })
    );
    assert_eq!(rc, Ok(()));
    let stored = store.get("a").await.unwrap().unwrap();
    assert_eq!(stored, after);
    assert_eq!(stored.state, JobState::Completed);
    assert_eq!(stored.version, 6);
    b = single;
    assert_eq!(store.get("b").await.unwrap().as_ref(), Some(&b));
    assert!(
        store
            .unfinished()
            .await
            .unwrap()
            .iter()
            .all(|r| r.id.as_str() != "a")
    );
}

/// API keys: stored, found by hash, listed oldest first, revoked; ids are unique.
pub async fn api_keys(store: &dyn ServiceStore) {
    let k1 = ApiKey::new("key-1", "acme", "a".repeat(64), at(2));
    let k2 = ApiKey::new("key-2", "beta", "b".repeat(64), at(1));
    store.put_key(&k1).await.unwrap();
    store.put_key(&k2).await.unwrap();
    assert_eq!(
        store.key_by_hash(&"a".repeat(64)).await.unwrap(),
        Some(k1.clone())
    );
    assert_eq!(store.key_by_hash(&"c".repeat(64)).await.unwrap(), None);
    assert_eq!(store.keys().await.unwrap(), vec![k2.clone(), k1.clone()]);

    assert!(store.revoke_key("key-1").await.unwrap());
    assert!(!store.revoke_key("key-9").await.unwrap());
    let revoked = store.key_by_hash(&"a".repeat(64)).await.unwrap().unwrap();
    assert!(revoked.revoked);
    assert!(!store.keys().await.unwrap()[0].revoked);

    let twin = ApiKey::new("key-1", "evil", "d".repeat(64), at(3));
    assert!(store.put_key(&twin).await.is_err());
    let still = store.key_by_hash(&"a".repeat(64)).await.unwrap().unwrap();
    assert_eq!((still.tenant.as_str(), still.revoked), ("acme", true));
}

/// The webhook outbox: one delivery per job, due ones oldest due first, updated by tries.
pub async fn webhook_outbox(store: &dyn ServiceStore) {
    let delivery = |job: &str, due: u64| {
        let mut d = WebhookDelivery::new(
            job.into(),
            format!("https://hooks.example/{job}"),
            json!({"job": job, "state": "completed"}),
            at(0),
        );
        d.next_at = at(due);
        d
    };
    let (j1, j2, j3) = (delivery("j1", 10), delivery("j2", 1000), delivery("j3", 5));
    for d in [&j1, &j2, &j3] {
        store.enqueue_webhook(d).await.unwrap();
    }
    let mut twin = delivery("j1", 1);
    twin.url = "https://elsewhere.example/".into();
    store.enqueue_webhook(&twin).await.unwrap();
    assert_eq!(store.webhook("j1").await.unwrap(), Some(j1.clone()));

    let jobs = |ds: Vec<WebhookDelivery>| {
        ds.into_iter()
            .map(|d| d.job.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        jobs(store.due_webhooks(at(100), 10).await.unwrap()),
        ["j3", "j1"]
    );
    assert_eq!(jobs(store.due_webhooks(at(100), 1).await.unwrap()), ["j3"]);
    assert_eq!(jobs(store.due_webhooks(at(5), 10).await.unwrap()), ["j3"]);
    assert!(store.due_webhooks(at(4), 10).await.unwrap().is_empty());

    let mut tried = j3.clone();
    tried.attempts = 1;
    tried.last_error = Some("HTTP 502".into());
    tried.next_at = at(2000);
    store.update_webhook(&tried).await.unwrap();
    assert_eq!(store.webhook("j3").await.unwrap(), Some(tried.clone()));
    assert_eq!(jobs(store.due_webhooks(at(100), 10).await.unwrap()), ["j1"]);

    tried.attempts = 2;
    tried.state = WebhookState::Delivered { at: at(2001) };
    store.update_webhook(&tried).await.unwrap();
    let mut failed = j1.clone();
    failed.attempts = 5;
    failed.state = WebhookState::Failed {
        error: "gave up after 5 tries".into(),
    };
    store.update_webhook(&failed).await.unwrap();
    assert_eq!(store.webhook("j3").await.unwrap(), Some(tried));
    assert_eq!(store.webhook("j1").await.unwrap(), Some(failed));
    assert_eq!(
        jobs(store.due_webhooks(at(5000), 10).await.unwrap()),
        ["j2"]
    );

    assert_eq!(
        store.update_webhook(&delivery("j9", 0)).await,
        Err(StoreError::NotFound("j9".into()))
    );
    assert_eq!(store.webhook("j9").await.unwrap(), None);
}

/// One test per [`JobStore`] check, for the store `$make` (an async expression giving a
/// value that derefs to the store, or a `(store, guard)` pair through `$store`).
macro_rules! job_store_conformance {
    ($make:expr) => {
        job_store_conformance!(@tests $make;
            insert_get_and_idempotent_insert,
            inserts_sent_together_end_as_in_sequence,
            get_many_reads_what_get_reads,
            update_is_compare_and_set,
            updates_sent_together_end_as_in_sequence,
            a_chain_of_transitions_is_all_or_none,
            unfinished_in_acceptance_order,
            list_filters_and_pages,
            blobs_by_content,
            blocks_put_replace_remove,
            purge_by_age_and_count,
        );

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_writers_lose_nothing() {
            let fixture = $make;
            let store: std::sync::Arc<dyn pool_core::JobStore> = fixture.store.clone();
            crate::support::conformance::concurrent_writers_lose_nothing(store).await;
        }
    };
    (@tests $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let fixture = $make;
                crate::support::conformance::$check(&*fixture.store).await;
            }
        )*
    };
}

/// One test per [`ServiceStore`] check, for the store `$make`.
macro_rules! service_store_conformance {
    ($make:expr) => {
        job_store_conformance!(@tests $make; api_keys, webhook_outbox);
    };
}
