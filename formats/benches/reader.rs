//! The streaming page reader against a plain quick-xml event loop (the ceiling), over a
//! generated page set of 100,000 `oai_dc` records of about 1 KB each; and the reader's peak heap
//! while reading pages of 1,000 and 10,000 records (it must not grow with the record count).
//!
//! `cargo bench -p formats` (or `just bench`). Figures go in the issue note.

// A counting allocator needs `unsafe impl GlobalAlloc`; it lives only in this benchmark.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use formats::dc::{Container, DcElement, DcRecord};
use formats::oai::{
    Datestamp, Header, PageReader, Payload, PayloadKind, ResponseWriter, ResumptionToken, Verb,
};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const RECORDS: usize = 100_000;
const PAGE: usize = 1_000;

fn record(i: usize) -> DcRecord {
    let mut v = vec![
        DcElement::dc(
            "title",
            &format!("Sunset at Montmajour, study no. {i} — Провансальский пейзаж"),
        ),
        DcElement::dc("creator", "Gogh, Vincent Willem van, 1853-1890"),
        DcElement::dc("creator", "Théo van Gogh & Johanna Bonger"),
        DcElement::dc("subject", "Landscape painting, Dutch -- 19th century"),
        DcElement::dc(
            "description",
            "Sunset at Montmajour is a landscape in oils painted in July 1888 near Arles, \
             authenticated in 2013: \"stunted oaks\" at sunset <in the yellow light>.",
        ),
        DcElement::dc("date", "1888-07-04"),
        DcElement::dc("type", "Image"),
        DcElement::dc("identifier", &format!("https://example.edu/works/{i}")),
        DcElement::dc("language", "en"),
        DcElement::dc("rights", "CC BY-SA 4.0"),
    ];
    v.truncate(12);
    DcRecord::new(v)
}

/// Pages of `per_page` records, `total` in all.
fn pages(total: usize, per_page: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < total {
        let w = ResponseWriter::new(
            Datestamp::from_unix(1_700_000_000),
            "http://localhost/oai",
            None,
        )
        .expect("envelope");
        let mut l = w.list(Verb::ListRecords).expect("list");
        for _ in 0..per_page.min(total - i) {
            let h = Header {
                identifier: format!("oai:d4I1-pubam:IE{}", 1000 + i),
                datestamp: Datestamp::from_unix(1_600_000_000 + i as i64),
                set_specs: vec!["alma_sync".into()],
                deleted: false,
            };
            l.record(&h, Some(Payload::Dc(&record(i), Container::OaiDc)))
                .expect("record");
            i += 1;
        }
        let token = ResumptionToken {
            value: if i < total {
                format!("t{i}")
            } else {
                String::new()
            },
            complete_list_size: Some(total as u64),
            cursor: Some(i as u64),
            expiration_date: None,
        };
        out.push(l.finish(Some(&token)).expect("page"));
    }
    out
}

fn read_all(pages: &[String], kind: PayloadKind) -> usize {
    let mut n = 0;
    for p in pages {
        let mut r = PageReader::new(p.as_bytes(), kind).expect("page");
        for item in r.by_ref() {
            black_box(item.expect("record"));
            n += 1;
        }
        black_box(r.resumption_token());
    }
    n
}

fn ceiling(pages: &[String]) -> usize {
    let mut n = 0;
    for p in pages {
        let mut r = quick_xml::Reader::from_str(p);
        loop {
            match r.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(e) => {
                    black_box(e);
                    n += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
    n
}

/// Peak heap while reading, above what was live before (the input itself is excluded).
fn peak_while_reading(page: &str) -> usize {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let n = read_all(std::slice::from_ref(&page.to_owned()), PayloadKind::Dc);
    black_box(n);
    PEAK.load(Ordering::Relaxed)
        .saturating_sub(base)
        .saturating_sub(page.len())
}

fn bench(c: &mut Criterion) {
    let set = pages(RECORDS, PAGE);
    let bytes: usize = set.iter().map(String::len).sum();
    eprintln!(
        "page set: {RECORDS} records in {} pages, {:.1} MB, {:.0} bytes/record",
        set.len(),
        bytes as f64 / 1e6,
        bytes as f64 / RECORDS as f64
    );
    for per_page in [1_000, 10_000] {
        let page = pages(per_page, per_page).remove(0);
        eprintln!(
            "peak heap reading one page of {per_page:>6} records ({:>5.1} MB): {:>7} bytes",
            page.len() as f64 / 1e6,
            peak_while_reading(&page)
        );
    }
    let mut g = c.benchmark_group("listrecords_100k_oai_dc");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("ceiling_quick_xml_event_loop", |b| b.iter(|| ceiling(&set)));
    g.bench_function("page_reader_dc", |b| {
        b.iter(|| assert_eq!(read_all(&set, PayloadKind::Dc), RECORDS))
    });
    // What an import that finds records unchanged reads: plain payloads as bytes and digests.
    g.bench_function("page_reader_dc_digested", |b| {
        b.iter(|| assert_eq!(read_all(&set, PayloadKind::DcDigested), RECORDS))
    });
    g.bench_function("page_reader_raw", |b| {
        b.iter(|| assert_eq!(read_all(&set, PayloadKind::Raw), RECORDS))
    });
    g.finish();
    let mut g = c.benchmark_group("listrecords_100k_oai_dc_records");
    g.sample_size(10);
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function("page_reader_dc", |b| {
        b.iter(|| read_all(&set, PayloadKind::Dc))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
