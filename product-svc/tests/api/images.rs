//! Product images over real gRPC, on local files and on an S3-compatible
//! server (moto): byte-identical round trips, thumbnails, bad input never
//! stored, nothing orphaned, presigned URLs.

use std::io::Cursor;
use std::time::Duration;

use futures_util::StreamExt as _;
use oms_proto::product::v1::{self as pb, upload_product_image_request::Part};
use product_svc::blobs::{BlobConfig, Blobs};
use testkit::{
    TempDir, TestDb, bearer, error_metadata as metadata, error_reason as reason, eventually,
};
use tonic::{Code, Status};

use crate::helpers::*;

/// Where a test's blobs go: a directory, or a fresh bucket on the test S3
/// server.
struct Store {
    env: Vec<(String, String)>,
    _dir: Option<TempDir>,
}

impl Store {
    fn files() -> Self {
        let dir = TempDir::new("oms_blobs");
        Self {
            env: vec![(
                "OMS_BLOB_URL".into(),
                format!("file://{}", dir.path().display()),
            )],
            _dir: Some(dir),
        }
    }

    async fn s3() -> Option<Self> {
        let (endpoint, bucket) = testkit::s3_test_bucket().await?;
        Some(Self {
            env: vec![
                ("OMS_BLOB_URL".into(), format!("s3://{bucket}/images")),
                ("AWS_ENDPOINT_URL".into(), endpoint),
                ("AWS_ALLOW_HTTP".into(), "true".into()),
                ("AWS_ACCESS_KEY_ID".into(), "test".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
                ("AWS_REGION".into(), "us-east-1".into()),
            ],
            _dir: None,
        })
    }

    fn with(mut self, var: &str, value: &str) -> Self {
        self.env.push((var.into(), value.into()));
        self
    }

    fn pairs(&self) -> Vec<(&str, &str)> {
        self.env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// The store as product-svc sees it, to look at what it holds.
    fn blobs(&self) -> Blobs {
        let env = oms_config::Env::from_pairs(self.env.clone());
        Blobs::open(&BlobConfig::from_env(&env).unwrap()).unwrap()
    }

    async fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .blobs()
            .list("products")
            .map(|b| b.unwrap().key)
            .collect()
            .await;
        keys.sort();
        keys
    }
}

/// Each test on both blob stores over SQLite, and on files over MariaDB
/// (the rows' rules are the database's, the bytes' the store's).
macro_rules! on_each_store {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn files() {
                oms_telemetry::init_for_tests();
                super::$name(super::Store::files(), testkit::TestDb::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3() {
                oms_telemetry::init_for_tests();
                if let Some(store) = super::Store::s3().await {
                    super::$name(store, testkit::TestDb::sqlite()).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mariadb() {
                oms_telemetry::init_for_tests();
                if let Some(db) = testkit::TestDb::mysql().await {
                    super::$name(super::Store::files(), db).await;
                }
            }
        }
    )+};
}

on_each_store!(
    an_image_round_trips_byte_for_byte_with_its_thumbnail,
    bad_uploads_are_refused_and_nothing_is_stored,
    an_interrupted_upload_leaves_no_row_and_no_object,
    orphaned_bytes_are_swept_after_the_grace_period,
    delete_removes_the_row_and_both_objects,
);

/// A `width` × `height` image in `format`.
fn picture(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let pixels = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(pixels)
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

fn sha256(bytes: &[u8]) -> String {
    oms_core::digest::sha256_hex(bytes)
}

fn start_message(product_id: &str, content_type: &str) -> pb::UploadProductImageRequest {
    pb::UploadProductImageRequest {
        part: Some(Part::Start(pb::ImageUploadStart {
            product_id: product_id.into(),
            content_type: content_type.into(),
            alt_text: "A mug, seen from the side".into(),
        })),
    }
}

fn chunk(bytes: &[u8]) -> pb::UploadProductImageRequest {
    pb::UploadProductImageRequest {
        part: Some(Part::Chunk(bytes.to_vec())),
    }
}

impl Mesh {
    async fn upload(
        &self,
        token: &str,
        product_id: &str,
        content_type: &str,
        bytes: &[u8],
        chunk_size: usize,
    ) -> Result<pb::ProductImage, Status> {
        let mut messages = vec![start_message(product_id, content_type)];
        messages.extend(bytes.chunks(chunk_size).map(chunk));
        self.catalogue()
            .upload_product_image(bearer(tokio_stream::iter(messages), token))
            .await
            .map(|r| r.into_inner().image.unwrap())
    }

    async fn download(
        &self,
        product_id: &str,
        image_id: &str,
        variant: pb::ImageVariant,
    ) -> (pb::ImageDownloadInfo, Vec<u8>) {
        let mut stream = self
            .catalogue()
            .download_product_image(pb::DownloadProductImageRequest {
                product_id: product_id.into(),
                image_id: image_id.into(),
                variant: variant.into(),
                if_none_match: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        use pb::download_product_image_response::Part as Down;
        let Some(Down::Info(info)) = stream.message().await.unwrap().unwrap().part else {
            panic!("the first message is the info");
        };
        let mut bytes = Vec::new();
        while let Some(message) = stream.message().await.unwrap() {
            let Some(Down::Chunk(chunk)) = message.part else {
                panic!("every later message is a chunk");
            };
            assert!(chunk.len() <= 64 * 1024);
            bytes.extend_from_slice(&chunk);
        }
        (info, bytes)
    }

    async fn images(&self, product_id: &str) -> Vec<pb::ProductImage> {
        self.catalogue()
            .list_product_images(pb::ListProductImagesRequest {
                product_id: product_id.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .images
    }
}

async fn an_image_round_trips_byte_for_byte_with_its_thumbnail(store: Store, db: TestDb) {
    let mesh = start(&db, &store.pairs()).await;
    let mug = mesh.create("IMG-1", 1_000, 5).await;
    let png = picture(640, 480, image::ImageFormat::Png);
    let image = mesh
        .upload(&mesh.admin, &mug.id, "image/png", &png, 50_000)
        .await
        .unwrap();
    assert_eq!(image.content_type, "image/png");
    assert_eq!(image.byte_size, png.len() as i64);
    assert_eq!((image.width, image.height), (640, 480));
    assert_eq!(image.sha256, sha256(&png));
    assert!(image.primary, "a product's first image is its primary one");
    assert_eq!(
        image.url,
        format!("/v1/products/{}/images/{}", mug.id, image.id)
    );

    let (info, bytes) = mesh
        .download(&mug.id, &image.id, pb::ImageVariant::Original)
        .await;
    assert_eq!(bytes, png, "byte for byte");
    assert_eq!(
        (
            info.content_type.as_str(),
            info.byte_size,
            info.sha256.as_str()
        ),
        ("image/png", png.len() as i64, image.sha256.as_str())
    );
    // A caller holding the bytes (its ETag) gets the info and no bytes.
    let mut held = mesh
        .catalogue()
        .download_product_image(pb::DownloadProductImageRequest {
            product_id: mug.id.clone(),
            image_id: image.id.clone(),
            variant: pb::ImageVariant::Original.into(),
            if_none_match: format!("\"other\", W/\"{}\"", image.sha256),
        })
        .await
        .unwrap()
        .into_inner();
    use pb::download_product_image_response::Part as Held;
    let Some(Held::Info(held_info)) = held.message().await.unwrap().unwrap().part else {
        panic!("the first message is the info");
    };
    assert!(held_info.not_modified);
    assert!(held.message().await.unwrap().is_none(), "no bytes follow");
    let (thumb_info, thumb) = mesh
        .download(&mug.id, &image.id, pb::ImageVariant::Thumbnail)
        .await;
    assert_eq!(thumb_info.content_type, "image/jpeg");
    assert!(!thumb_info.not_modified);
    let decoded = image::load_from_memory_with_format(&thumb, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (320, 240));

    // The same bytes again are the same image, stored once.
    let again = mesh
        .upload(&mesh.admin, &mug.id, "image/png", &png, 64 * 1024)
        .await
        .unwrap();
    assert_eq!(again.id, image.id);
    let jpeg = picture(200, 100, image::ImageFormat::Jpeg);
    let second = mesh
        .upload(&mesh.admin, &mug.id, "image/jpeg", &jpeg, 64 * 1024)
        .await
        .unwrap();
    assert!(!second.primary);
    let (_, small_thumb) = mesh
        .download(&mug.id, &second.id, pb::ImageVariant::Thumbnail)
        .await;
    let small =
        image::load_from_memory_with_format(&small_thumb, image::ImageFormat::Jpeg).unwrap();
    assert_eq!(small.width(), 200, "a narrow image is not enlarged");
    assert_eq!(store.keys().await.len(), 4, "two images, two thumbnails");
    assert_eq!(
        published(&mesh, Some(&mug.id), "oms.product.v1.ProductImageAdded")
            .await
            .len(),
        2,
        "an event per image added, none for the repeat"
    );

    let listed = mesh.images(&mug.id).await;
    assert_eq!(
        listed.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        [image.id.as_str(), second.id.as_str()]
    );
    assert_eq!(
        mesh.get(&mug.id).await.images,
        listed,
        "GetProduct shows them"
    );

    let webp = picture(64, 64, image::ImageFormat::WebP);
    let third = mesh
        .upload(&mesh.admin, &mug.id, "image/webp", &webp, 1_000)
        .await
        .unwrap();
    let reordered = mesh
        .catalogue()
        .set_primary_image(bearer(
            pb::SetPrimaryImageRequest {
                product_id: mug.id.clone(),
                image_id: third.id.clone(),
            },
            &mesh.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(reordered[0].id, third.id);
    assert_eq!(reordered.iter().filter(|i| i.primary).count(), 1);
    // GetProduct (cached since its first read) sees both changes.
    assert_eq!(mesh.get(&mug.id).await.images, reordered);
}

/// A PNG header that declares `width` × `height` pixels and holds none.
fn png_header(width: u32, height: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for byte in bytes {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(png: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &header);
    // A well-formed (empty) zlib stream: the file is a PNG in every way but
    // its size.
    chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut png, b"IEND", &[]);
    png
}

async fn bad_uploads_are_refused_and_nothing_is_stored(store: Store, db: TestDb) {
    let mesh = start(&db, &store.pairs()).await;
    let mug = mesh.create("IMG-BAD", 1_000, 5).await;

    let text = b"this is not a picture, whatever its name says".repeat(10);
    let renamed = mesh
        .upload(&mesh.admin, &mug.id, "image/png", &text, 64 * 1024)
        .await
        .unwrap_err();
    assert_eq!(
        (renamed.code(), reason(&renamed)),
        (Code::InvalidArgument, "IMAGE_TYPE_MISMATCH".into())
    );
    let jpeg = picture(50, 50, image::ImageFormat::Jpeg);
    let mislabelled = mesh
        .upload(&mesh.admin, &mug.id, "image/png", &jpeg, 64 * 1024)
        .await
        .unwrap_err();
    assert_eq!(metadata(&mislabelled, "actual"), "image/jpeg");

    let six_mib = {
        let mut bytes = picture(16, 16, image::ImageFormat::Png);
        bytes.resize(6 << 20, 0);
        bytes
    };
    let big = mesh
        .upload(&mesh.admin, &mug.id, "image/png", &six_mib, 64 * 1024)
        .await
        .unwrap_err();
    assert_eq!(
        (big.code(), reason(&big)),
        (Code::ResourceExhausted, "IMAGE_TOO_LARGE".into())
    );
    assert_eq!(metadata(&big, "limit"), (5u64 << 20).to_string());

    let bomb = mesh
        .upload(
            &mesh.admin,
            &mug.id,
            "image/png",
            &png_header(100_000, 100_000),
            64 * 1024,
        )
        .await
        .unwrap_err();
    assert_eq!(reason(&bomb), "IMAGE_DIMENSIONS_TOO_LARGE");

    let huge_chunk = mesh
        .upload(
            &mesh.admin,
            &mug.id,
            "image/jpeg",
            &vec![0xFF; 100_000],
            100_000,
        )
        .await
        .unwrap_err();
    assert_eq!(reason(&huge_chunk), "CHUNK_TOO_LARGE");

    let unknown = uuid::Uuid::now_v7().to_string();
    let nowhere = mesh
        .upload(&mesh.admin, &unknown, "image/jpeg", &jpeg, 64 * 1024)
        .await
        .unwrap_err();
    assert_eq!(
        (nowhere.code(), reason(&nowhere)),
        (Code::NotFound, "PRODUCT_NOT_FOUND".into())
    );
    let customer = mesh
        .upload(&mesh.customer, &mug.id, "image/jpeg", &jpeg, 64 * 1024)
        .await
        .unwrap_err();
    assert_eq!(customer.code(), Code::PermissionDenied);
    let gif = mesh
        .upload(&mesh.admin, &mug.id, "image/gif", &jpeg, 64 * 1024)
        .await
        .unwrap_err();
    assert_eq!(gif.code(), Code::InvalidArgument);
    assert_eq!(testkit::violated_fields(&gif), ["start.content_type"]);

    assert!(mesh.images(&mug.id).await.is_empty(), "no row");
    assert!(store.keys().await.is_empty(), "no object");
}

async fn an_interrupted_upload_leaves_no_row_and_no_object(store: Store, db: TestDb) {
    let mesh = start(&db, &store.pairs()).await;
    let mug = mesh.create("IMG-CUT", 1_000, 5).await;
    let png = picture(300, 300, image::ImageFormat::Png);
    // Half the bytes, then the client goes away.
    let half: Vec<_> = std::iter::once(start_message(&mug.id, "image/png"))
        .chain(png[..png.len() / 2].chunks(4_096).map(chunk))
        .collect();
    // The stream says when the transport has taken its last message (the
    // server's flow-control window let the bytes through), then never
    // ends; the client goes away at that point, not after a guessed time.
    let (sent_tx, sent) = tokio::sync::oneshot::channel();
    let mut sent_tx = Some(sent_tx);
    let stalled = tokio_stream::iter(half).chain(futures_util::stream::poll_fn(move |_| {
        if let Some(tx) = sent_tx.take() {
            let _ = tx.send(());
        }
        std::task::Poll::Pending
    }));
    let mut catalogue = mesh.catalogue();
    let call = catalogue.upload_product_image(bearer(stalled, &mesh.admin));
    tokio::select! {
        answer = call => panic!("the upload cannot finish without its end: {answer:?}"),
        all = sent => all.unwrap(),
    }
    // The complete upload afterwards works: the cut one held nothing.
    let image = mesh
        .upload(&mesh.admin, &mug.id, "image/png", &png, 64 * 1024)
        .await
        .unwrap();
    assert_eq!(mesh.images(&mug.id).await.len(), 1);
    assert_eq!(
        store.keys().await,
        [
            format!("products/{}/{}.png", mug.id, image.sha256),
            format!("products/{}/{}.thumb.jpg", mug.id, image.sha256)
        ]
    );
}

async fn orphaned_bytes_are_swept_after_the_grace_period(store: Store, db: TestDb) {
    let store = store.with("OMS_BLOB_ORPHAN_GRACE", "1s");
    let mesh = start(&db, &store.pairs()).await;
    // A second replica on the same database and store sweeps the same
    // blobs every second too.
    let _twin = start_products(&db, &mesh.users, &store.pairs(), &mesh.bus).await;
    let mug = mesh.create("IMG-ORPHAN", 1_000, 5).await;
    let kept = mesh
        .upload(
            &mesh.admin,
            &mug.id,
            "image/png",
            &picture(32, 32, image::ImageFormat::Png),
            64 * 1024,
        )
        .await
        .unwrap();
    // What a crash between storing the bytes and writing the row leaves.
    let orphan = format!("products/{}/{}.png", mug.id, "0".repeat(64));
    store
        .blobs()
        .put(&orphan, bytes::Bytes::from_static(b"left behind"))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(15),
        "the orphan to be swept",
        || async { (!store.keys().await.contains(&orphan)).then_some(()) },
    )
    .await;
    assert_eq!(
        store.keys().await,
        [
            format!("products/{}/{}.png", mug.id, kept.sha256),
            format!("products/{}/{}.thumb.jpg", mug.id, kept.sha256)
        ],
        "what a row points to stays"
    );
    // Both replicas went on sweeping, and neither round failed on a blob
    // the other had deleted.
    let task = "task=\"swept orphaned image blobs\"";
    let rounds = testkit::counter("background_task_rounds_total", task);
    eventually(Duration::from_secs(15), "two more sweeps", || async {
        (testkit::counter("background_task_rounds_total", task) >= rounds + 2).then_some(())
    })
    .await;
    assert_eq!(testkit::counter("background_task_errors_total", task), 0);
}

async fn delete_removes_the_row_and_both_objects(store: Store, db: TestDb) {
    let mesh = start(&db, &store.pairs()).await;
    let mug = mesh.create("IMG-DEL", 1_000, 5).await;
    let first = mesh
        .upload(
            &mesh.admin,
            &mug.id,
            "image/png",
            &picture(40, 40, image::ImageFormat::Png),
            64 * 1024,
        )
        .await
        .unwrap();
    let second = mesh
        .upload(
            &mesh.admin,
            &mug.id,
            "image/jpeg",
            &picture(40, 20, image::ImageFormat::Jpeg),
            64 * 1024,
        )
        .await
        .unwrap();
    let delete = |token: &str, id: &str| {
        let mut catalogue = mesh.catalogue();
        let request = bearer(
            pb::DeleteProductImageRequest {
                product_id: mug.id.clone(),
                image_id: id.into(),
            },
            token,
        );
        async move { catalogue.delete_product_image(request).await }
    };
    assert_eq!(
        delete(&mesh.customer, &first.id).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    assert_eq!(mesh.get(&mug.id).await.images.len(), 2, "now cached");
    delete(&mesh.admin, &first.id).await.unwrap();
    assert_eq!(
        mesh.get(&mug.id).await.images.len(),
        1,
        "the cache forgot it"
    );
    let left = mesh.images(&mug.id).await;
    assert_eq!(left.len(), 1);
    assert!(left[0].primary, "the next image becomes primary");
    assert_eq!(left[0].id, second.id);
    assert_eq!(
        store.keys().await.len(),
        2,
        "the deleted image's two objects are gone"
    );
    assert_eq!(
        published(&mesh, Some(&mug.id), "oms.product.v1.ProductImageRemoved")
            .await
            .len(),
        1
    );
    let gone = delete(&mesh.admin, &first.id).await.unwrap_err();
    assert_eq!(
        (gone.code(), reason(&gone)),
        (Code::NotFound, "IMAGE_NOT_FOUND".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_s3_a_presigned_url_replaces_the_bytes_and_fetches_them() {
    oms_telemetry::init_for_tests();
    let Some(store) = Store::s3().await else {
        return;
    };
    let store = store.with("OMS_BLOB_PRESIGN", "true");
    let db = TestDb::sqlite();
    let mesh = start(&db, &store.pairs()).await;
    let mug = mesh.create("IMG-SIGN", 1_000, 5).await;
    let png = picture(48, 48, image::ImageFormat::Png);
    let image = mesh
        .upload(&mesh.admin, &mug.id, "image/png", &png, 64 * 1024)
        .await
        .unwrap();
    let (info, bytes) = mesh
        .download(&mug.id, &image.id, pb::ImageVariant::Original)
        .await;
    assert!(bytes.is_empty(), "no bytes when there is a URL");
    let url = info.presigned_url;
    assert!(
        url.contains(&format!("/images/products/{}/{}.png", mug.id, image.sha256))
            && url.contains("X-Amz-Signature=")
            && url.contains("X-Amz-Expires=300"),
        "{url}"
    );
    // The local server does not check signatures: the round trip shows the
    // URL names the stored object.
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let fetched =
        testkit::http::send_bytes(authority.parse().unwrap(), "GET", path, &[], &[]).await;
    assert_eq!(fetched.status, 200, "{}", fetched.text);
    assert_eq!(fetched.bytes, png);
}

/// No static keys: the credentials come from the standard chain, here
/// its last link, instance metadata (the test server's own endpoint, as
/// an EC2 node's would be at 169.254.169.254).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_s3_credentials_come_from_the_chain_without_static_keys() {
    oms_telemetry::init_for_tests();
    let Some(store) = Store::s3().await else {
        return;
    };
    let endpoint = store
        .env
        .iter()
        .find(|(k, _)| k == "AWS_ENDPOINT_URL")
        .map(|(_, v)| v.clone())
        .unwrap();
    let mut env: Vec<(String, String)> = store
        .env
        .iter()
        .filter(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY")
        .cloned()
        .collect();
    env.push(("AWS_METADATA_ENDPOINT".to_owned(), endpoint));
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let db = TestDb::sqlite();
    let mesh = start(&db, &pairs).await;
    let mug = mesh.create("IMG-CHAIN", 1_000, 5).await;
    let png = picture(32, 32, image::ImageFormat::Png);
    let image = tokio::time::timeout(
        Duration::from_secs(60),
        mesh.upload(&mesh.admin, &mug.id, "image/png", &png, 64 * 1024),
    )
    .await
    .expect("the upload ends")
    .unwrap();
    let (_, bytes) = mesh
        .download(&mug.id, &image.id, pb::ImageVariant::Original)
        .await;
    assert_eq!(bytes, png);
}

/// Eight large images at once: each decodes to 16 MiB, and they take
/// their turn, so decoding holds one image's memory at a time. (Eight
/// 8000 × 8000 PNGs of zeros at once once took the process to 2.3 GB.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_images_decode_one_at_a_time_within_a_stated_memory() {
    oms_telemetry::init_for_tests();
    let store = Store::files();
    let db = TestDb::sqlite();
    let mesh = start(&db, &store.pairs()).await;
    let zeros = {
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgba8(image::RgbaImage::new(2_000, 2_000))
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    let mut products = Vec::new();
    for i in 0..8 {
        products.push(mesh.create(&format!("BIG-{i}"), 1_000, 5).await.id);
    }
    let (before, _) = testkit::memory();
    let uploads = futures_util::future::join_all(
        products
            .iter()
            .map(|id| mesh.upload(&mesh.admin, id, "image/png", &zeros, 64 * 1024)),
    );
    let mut uploads = std::pin::pin!(uploads);
    let mut sample = tokio::time::interval(Duration::from_millis(5));
    let mut peak = before;
    let results = loop {
        tokio::select! {
            results = &mut uploads => break results,
            _ = sample.tick() => peak = peak.max(testkit::memory().0),
        }
    };
    for result in results {
        let image = result.unwrap();
        assert_eq!((image.width, image.height), (2_000, 2_000));
    }
    let grown = peak.saturating_sub(before) / (1024 * 1024);
    eprintln!("resident memory grew by {grown} MiB at most");
    // SECURITY.md states the bound: one decoded image (16 MiB here, at
    // most 64 MiB) and the uploads' own bytes.
    assert!(grown < 48, "resident memory grew by {grown} MiB");

    // Past the pixel cap (16 megapixels), the header alone is refused.
    let wide = mesh
        .upload(
            &mesh.admin,
            &products[0],
            "image/png",
            &png_header(4_097, 4_096),
            64 * 1024,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (wide.code(), reason(&wide)),
        (Code::InvalidArgument, "IMAGE_DIMENSIONS_TOO_LARGE".into())
    );
}

/// Images racing to be a product's first, written straight to the store
/// (uploads take turns at decoding, which hides the race): one of them
/// is primary. On MariaDB only: SQLite runs one transaction at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mariadb_concurrent_first_images_make_one_primary() {
    use product_svc::model::{ImageKind, ProductImage};
    oms_telemetry::init_for_tests();
    let Some(db) = TestDb::mysql().await else {
        return;
    };
    let store = Store::files();
    let mesh = start(&db, &store.pairs()).await;
    let conn = oms_store::db::connect(db.url(), Default::default())
        .await
        .unwrap();
    let broker =
        events::Broker::from_env(&oms_config::Env::from_pairs(Vec::<(String, String)>::new()))
            .unwrap();
    let product_events = product_svc::product_events::ProductEvents::new(broker.outbox());
    for round in 0..10 {
        let product = mesh.create(&format!("RACE-{round}"), 1_000, 5).await.id;
        let images: Vec<ProductImage> = (0..4)
            .map(|i| ProductImage {
                id: uuid::Uuid::now_v7().to_string(),
                product_id: product.clone(),
                kind: ImageKind::Png,
                byte_size: 10,
                width: 1,
                height: 1,
                sha256: format!("{round:02}{i:062}"),
                alt_text: String::new(),
                primary: false,
                object_key: format!("k/{round}/{i}"),
                thumbnail_key: format!("t/{round}/{i}"),
                thumbnail_size: 1,
                create_time: oms_core::time::now(),
            })
            .collect();
        let inserts = futures_util::future::join_all(images.iter().map(|image| {
            product_svc::store::product_images::insert(&conn, &product_events, image)
        }));
        let primaries = inserts
            .await
            .into_iter()
            .map(|stored| stored.unwrap().unwrap())
            .filter(|stored| stored.primary)
            .count();
        assert_eq!(primaries, 1, "round {round}");
        let listed = mesh.images(&product).await;
        assert_eq!(listed.iter().filter(|i| i.primary).count(), 1);
    }
}
