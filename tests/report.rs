//! What a run leaves in its folder: the metrics CSV read back field by field,
//! the atomic writer when the write fails, and the plots with and without test
//! metrics, accuracy and fonts. No GPU needed.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use wgpu_mlp::metrics::ClassReport;
use wgpu_mlp::report::{
    append_metrics_csv, default_font_dirs, find_font, plot_confusion, plot_losses, plot_losses_with_fonts,
    read_metrics_csv, write_atomically, write_confusion_csv, write_metrics_csv, MetricsRow, PlotWritten,
    METRICS_CSV_HEADER,
};
use wgpu_mlp::train::EpochMetrics;
use wgpu_mlp::Error;

/// A fresh folder for one test, removed first if an earlier run left it.
fn folder(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgpu-mlp-report-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The names of the files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A run of `epochs` epochs with falling losses and rising accuracies.
fn run(epochs: usize, test: bool, accuracy: bool) -> Vec<MetricsRow> {
    (1..=epochs)
        .map(|epoch| {
            let t = epoch as f32;
            MetricsRow {
                epoch,
                metrics: EpochMetrics {
                    train_loss: 2.0 / (1.0 + t),
                    train_accuracy: accuracy.then(|| 1.0 - 0.5 / t),
                    val_loss: test.then(|| 2.2 / (1.0 + t)),
                    val_accuracy: (test && accuracy).then(|| 1.0 - 0.6 / t),
                    val_mae: None,
                    val_rmse: None,
                    val_r2: None,
                    val_outputs: None,
                },
                lr: Some(0.01 / t),
                epsilon: None,
                seconds: 0.125 * t as f64,
            }
        })
        .collect()
}

#[test]
fn metrics_csv_round_trips_every_field_with_empty_fields_for_none() {
    let dir = folder("csv");
    let path = dir.join("metrics.csv");
    let rows = vec![
        MetricsRow {
            epoch: 1,
            metrics: EpochMetrics {
                train_loss: 0.1,
                train_accuracy: Some(0.25),
                val_loss: Some(1.0e-8),
                val_accuracy: Some(1.0),
                val_mae: None,
                val_rmse: None,
                val_r2: None,
                val_outputs: None,
            },
            lr: Some(0.001),
            epsilon: Some(0.123_456_789_012_345_6),
            seconds: 0.001_234_567_890_123,
        },
        MetricsRow {
            epoch: 2,
            metrics: EpochMetrics {
                train_loss: 123_456.79,
                train_accuracy: None,
                val_loss: Some(0.5),
                val_accuracy: None,
                val_mae: Some(0.25),
                val_rmse: Some(0.75),
                val_r2: Some(-1.5),
                val_outputs: None,
            },
            lr: None,
            epsilon: None,
            seconds: 2.5,
        },
        MetricsRow {
            epoch: 10,
            metrics: EpochMetrics {
                train_loss: 3.0e-7,
                train_accuracy: Some(0.9),
                val_loss: None,
                val_accuracy: None,
                val_mae: None,
                val_rmse: None,
                val_r2: None,
                val_outputs: None,
            },
            lr: Some(2.5e-5),
            epsilon: Some(3.0),
            seconds: 1.0e6 / 3.0,
        },
    ];
    write_metrics_csv(&path, &rows, 0).unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text.lines().next(),
        Some("epoch,train_loss,val_loss,train_accuracy,val_accuracy,val_mae,val_rmse,val_r2,lr,epsilon,seconds")
    );
    assert_eq!(text.lines().nth(2), Some("2,123456.79,0.5,,,0.25,0.75,-1.5,,,2.5"), "None is an empty field:\n{text}");

    let mut reader = csv::Reader::from_path(&path).unwrap();
    assert_eq!(reader.headers().unwrap(), &csv::StringRecord::from(METRICS_CSV_HEADER.to_vec()));
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), rows.len());
    let optional = |field: &str| (!field.is_empty()).then(|| field.parse::<f32>().unwrap());
    for (record, row) in records.iter().zip(&rows) {
        assert_eq!(record.len(), 11, "{record:?}");
        assert_eq!(record[0].parse::<usize>().unwrap(), row.epoch);
        assert_eq!(record[1].parse::<f32>().unwrap(), row.metrics.train_loss, "{record:?}");
        assert_eq!(optional(&record[2]), row.metrics.val_loss, "{record:?}");
        assert_eq!(optional(&record[3]), row.metrics.train_accuracy, "{record:?}");
        assert_eq!(optional(&record[4]), row.metrics.val_accuracy, "{record:?}");
        assert_eq!(optional(&record[5]), row.metrics.val_mae, "{record:?}");
        assert_eq!(optional(&record[6]), row.metrics.val_rmse, "{record:?}");
        assert_eq!(optional(&record[7]), row.metrics.val_r2, "{record:?}");
        assert_eq!(optional(&record[8]), row.lr, "{record:?}");
        assert_eq!((!record[9].is_empty()).then(|| record[9].parse::<f64>().unwrap()), row.epsilon, "{record:?}");
        assert_eq!(record[10].parse::<f64>().unwrap(), row.seconds, "{record:?}");
    }
    // And back, every field as written.
    assert_eq!(wgpu_mlp::report::read_metrics_csv(&path).unwrap(), rows);
    assert_eq!(listing(&dir), ["metrics.csv"], "no temporary file is left");
}

#[test]
fn metrics_csv_of_no_epochs_is_the_header_alone() {
    let dir = folder("csv-empty");
    let path = dir.join("metrics.csv");
    write_metrics_csv(&path, &[], 0).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "epoch,train_loss,val_loss,train_accuracy,val_accuracy,val_mae,val_rmse,val_r2,lr,epsilon,seconds\n"
    );
}

#[test]
fn a_write_that_fails_midway_keeps_the_previous_file_and_leaves_no_temporary() {
    let dir = folder("atomic-fail");
    let path = dir.join("metrics.csv");
    std::fs::write(&path, "the previous run\n").unwrap();

    let error = write_atomically(&path, |file| {
        file.write_all(b"half of the new")?;
        file.flush()?;
        Err(io::Error::other("disk full (simulated)"))
    })
    .expect_err("the closure's error is returned");
    // A full disk is the machine's, not the user's: Error::Io, exit code 1,
    // naming the file, with the closure's error as its source.
    assert_eq!(error.to_string(), format!("cannot write {}", path.display()));
    let source = std::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("disk full (simulated)"), "{error:?}");
    assert!(matches!(error, Error::Io { .. }) && !error.is_bad_input(), "{error:?}");

    assert_eq!(std::fs::read_to_string(&path).unwrap(), "the previous run\n");
    assert_eq!(listing(&dir), ["metrics.csv"]);
}

#[test]
fn a_write_that_panics_leaves_no_temporary() {
    let dir = folder("atomic-panic");
    let path = dir.join("checkpoint.bin");
    let outcome = std::panic::catch_unwind(|| {
        write_atomically(&path, |file| {
            file.write_all(b"partial").unwrap();
            panic!("the writer broke");
        })
    });
    assert!(outcome.is_err());
    assert!(listing(&dir).is_empty(), "{:?}", listing(&dir));
}

#[test]
fn a_write_that_succeeds_replaces_the_file_and_leaves_no_temporary() {
    let dir = folder("atomic-ok");
    let path = dir.join("metrics.csv");
    std::fs::write(&path, "the previous run, a longer text than the new one\n").unwrap();
    write_atomically(&path, |file| file.write_all(b"new\n")).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
    assert_eq!(listing(&dir), ["metrics.csv"]);
}

#[test]
fn a_write_into_a_missing_folder_fails_naming_the_file() {
    let dir = folder("atomic-missing");
    let path = dir.join("no-such-folder").join("metrics.csv");
    let error = write_atomically(&path, |file| file.write_all(b"x")).unwrap_err();
    let message = error.to_string();
    assert!(message.starts_with(&format!("cannot write {}: ", path.display())), "{message}");
    // The user named a folder that does not exist: theirs to fix, exit code 2.
    assert!(error.is_bad_input(), "{error:?}");
}

/// A symlink's target is replaced atomically and the link kept: the user
/// pointed the path somewhere on purpose.
#[test]
fn a_write_through_a_symlink_replaces_its_target_and_keeps_the_link() {
    let dir = folder("atomic-symlink");
    let target = dir.join("target.csv");
    std::fs::write(&target, "old\n").unwrap();
    let link = dir.join("link.csv");
    std::os::unix::fs::symlink("target.csv", &link).unwrap();
    write_atomically(&link, |file| file.write_all(b"new\n")).unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link is kept");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "new\n");
    assert_eq!(listing(&dir), ["link.csv", "target.csv"], "no temporary is left");
}

/// A FIFO (like a device) is written into, not replaced: opening it for
/// writing waits for the reader this test starts first.
#[test]
fn a_write_to_a_fifo_writes_into_it_and_keeps_it() {
    use std::os::unix::fs::FileTypeExt;
    let dir = folder("atomic-fifo");
    let fifo = dir.join("out.fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || std::fs::read_to_string(reader_path).unwrap());
    let written = write_atomically(&fifo, |file| file.write_all(b"through the pipe\n"));
    // A writer that replaced the FIFO leaves the reader blocked on the old
    // one: fail before joining it (the thread ends with the test process).
    let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(kind.is_fifo(), "the FIFO was replaced by a {kind:?}");
    written.unwrap();
    assert_eq!(reader.join().unwrap(), "through the pipe\n");
    assert_eq!(listing(&dir), ["out.fifo"]);
}

#[test]
fn a_write_to_a_folder_is_refused_as_bad_input() {
    let dir = folder("atomic-folder");
    let inside = dir.join("a-folder");
    std::fs::create_dir(&inside).unwrap();
    let error = write_atomically(&inside, |file| file.write_all(b"x")).unwrap_err();
    assert!(error.is_bad_input(), "{error:?}");
    assert!(error.to_string().starts_with(&format!("cannot write {}", inside.display())), "{error}");
    assert!(inside.is_dir());
    assert_eq!(listing(&dir), ["a-folder"]);
}

/// metrics.csv grows by appending each read-back's rows, not by rewriting
/// the file: the file stays the same inode, and every row is kept.
#[test]
fn a_run_folder_appends_each_read_back_to_metrics_csv() {
    use std::os::unix::fs::MetadataExt;
    let dir = folder("run-append");
    let mut run_folder = wgpu_mlp::run::RunFolder::create(Some(&dir), Default::default(), None).unwrap();
    let rows = run(3, false, false);
    let path = dir.join("metrics.csv");
    run_folder.record(1, &[rows[0].metrics.clone()], 0.5).unwrap();
    let inode = std::fs::metadata(&path).unwrap().ino();
    run_folder.record(3, &[rows[1].metrics.clone(), rows[2].metrics.clone()], 1.5).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "appended, not replaced");
    let text = std::fs::read_to_string(&path).unwrap();
    let epochs: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(epochs, ["1", "2", "3"], "{text}");
    assert_eq!(
        text.lines().next(),
        Some("epoch,train_loss,val_loss,train_accuracy,val_accuracy,val_mae,val_rmse,val_r2,lr,epsilon,seconds")
    );
}

/// What a crash during an append leaves, a last line without its newline,
/// is dropped on reading; every whole row comes back bit for bit.
#[test]
fn reading_metrics_csv_drops_a_torn_last_line() {
    let dir = folder("csv-torn");
    let path = dir.join("metrics.csv");
    let rows = run(3, true, true);
    write_metrics_csv(&path, &rows[..2], 0).unwrap();
    append_metrics_csv(&path, &rows[2..], 0).unwrap();
    assert_eq!(read_metrics_csv(&path).unwrap(), rows);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text += "4,0.1,0.";
    std::fs::write(&path, text).unwrap();
    assert_eq!(read_metrics_csv(&path).unwrap(), rows);
}

/// An SVG document and the words of its `<text>` elements.
struct Svg {
    text: String,
    words: Vec<String>,
}

impl Svg {
    fn says(&self, words: &str) -> bool {
        self.words.iter().any(|w| w == words)
    }
}

/// Reads `path`, checking it is one whole SVG document with a labelled x axis.
fn read_svg(path: &Path) -> Svg {
    let svg = read_svg_document(path);
    assert!(svg.says("epoch"), "the x axis is labelled: {:?}", svg.words);
    svg
}

/// Reads `path`, checking it is one whole SVG document.
fn read_svg_document(path: &Path) -> Svg {
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.trim_start();
    assert!(start.starts_with("<svg") || start.starts_with("<?xml"), "{}", &text[..text.len().min(200)]);
    assert!(text.trim_end().ends_with("</svg>"), "the document is whole");
    assert_eq!(text.matches("<svg").count(), 1);
    let words = text
        .split("<text")
        .skip(1)
        .map(|element| {
            let inner = element.split_once('>').expect("a text element has a body").1;
            inner.split_once("</text>").expect("every text element is closed").0.trim().to_string()
        })
        .collect();
    Svg { text, words }
}

const NO_FONTS: &str = "/nonexistent/wgpu-mlp/fonts";

#[test]
fn svg_of_a_run_with_only_a_training_loss() {
    let dir = folder("svg-train");
    let svg = dir.join("loss.svg");
    let written = plot_losses_with_fonts(&svg, None, &run(30, false, false), &[Path::new(NO_FONTS)], None).unwrap();
    assert_eq!(written, PlotWritten { svg: true, png: false, png_font: None, png_skipped_because: None });
    let svg = read_svg(&svg);
    assert!(svg.says("train loss"), "the legend names the series: {:?}", svg.words);
    assert!(svg.says("loss"), "the y axis is labelled");
    for absent in ["validation loss", "accuracy"] {
        assert!(!svg.text.contains(absent), "{absent} was not measured");
    }
    assert_eq!(listing(&dir), ["loss.svg"]);
}

#[test]
fn svg_of_a_run_with_test_metrics_and_accuracy_has_two_panels() {
    let dir = folder("svg-all");
    let svg = dir.join("loss.svg");
    let written = plot_losses_with_fonts(&svg, None, &run(200, true, true), &[Path::new(NO_FONTS)], None).unwrap();
    assert!(written.svg && !written.png && written.png_skipped_because.is_none(), "{written:?}");
    let svg = read_svg(&svg);
    for words in [
        "train loss",
        "validation loss",
        "train accuracy",
        "validation accuracy",
        "loss per epoch",
        "accuracy per epoch",
    ] {
        assert!(svg.says(words), "{words} is missing from {:?}", svg.words);
    }
}

#[test]
fn a_run_that_stopped_on_a_nan_loss_still_plots_the_epochs_before() {
    let dir = folder("svg-nan");
    let svg = dir.join("loss.svg");
    let mut rows = run(5, true, false);
    rows[4].metrics.train_loss = f32::NAN;
    rows[4].metrics.val_loss = Some(f32::INFINITY);
    let written = plot_losses_with_fonts(&svg, None, &rows, &[], None).unwrap();
    assert!(written.svg, "{written:?}");
    let svg = read_svg(&svg);
    assert!(!svg.text.contains("NaN") && !svg.text.contains("inf"), "no non-finite coordinate reaches the SVG");
}

#[test]
fn no_epochs_write_nothing_and_say_so() {
    let dir = folder("empty");
    let (svg, png) = (dir.join("loss.svg"), dir.join("loss.png"));
    let written = plot_losses(&svg, Some(&png), &[], None).unwrap();
    assert!(!written.svg && !written.png, "{written:?}");
    assert_eq!(written.png_skipped_because.as_deref(), Some("no epochs to plot"));
    assert!(listing(&dir).is_empty());
}

#[test]
fn without_a_font_the_png_is_skipped_with_the_reason_and_the_svg_still_written() {
    let dir = folder("no-font");
    // A folder holding a file named like a font that is not one must not count.
    let fake_fonts = dir.join("fonts");
    std::fs::create_dir(&fake_fonts).unwrap();
    std::fs::write(fake_fonts.join("DejaVuSans.ttf"), b"not a font").unwrap();
    let (svg, png) = (dir.join("loss.svg"), dir.join("loss.png"));
    for fonts in [vec![Path::new(NO_FONTS)], vec![fake_fonts.as_path()], vec![]] {
        assert_eq!(find_font(&fonts), None);
        let written = plot_losses_with_fonts(&svg, Some(&png), &run(10, true, true), &fonts, None).unwrap();
        assert!(written.svg && !written.png && written.png_font.is_none(), "{written:?}");
        let reason = written.png_skipped_because.expect("the result says why there is no PNG");
        assert!(reason.contains("no usable TrueType or OpenType font"), "{reason}");
        for folder in &fonts {
            assert!(reason.contains(&folder.display().to_string()), "the reason names where it looked: {reason}");
        }
        assert!(!png.exists());
        read_svg(&svg);
    }
}

/// Checks `path` is a whole PNG of the figure with text in the caption strip
/// above the chart, and returns its size.
fn check_png(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "PNG magic bytes");
    let mut reader = png::Decoder::new(io::Cursor::new(bytes)).read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    assert_eq!((frame.color_type, frame.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
    // Only the caption is drawn in the top 40 rows: dark pixels there are text.
    let row_bytes = frame.width as usize * 3;
    let dark = pixels[..40 * row_bytes].chunks(3).filter(|rgb| rgb.iter().all(|&c| c < 128)).count();
    assert!(dark > 100, "the caption was drawn: {dark} dark pixels");
    (frame.width, frame.height)
}

#[test]
fn with_the_default_font_folders_the_png_follows_whether_a_font_is_found() {
    let dir = folder("default-fonts");
    let (svg, png) = (dir.join("loss.svg"), dir.join("loss.png"));
    let dirs = default_font_dirs();
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let written = plot_losses(&svg, Some(&png), &run(40, true, true), None).unwrap();
    match find_font(&dirs) {
        Some(font) => {
            assert_eq!(written, PlotWritten { svg: true, png: true, png_font: Some(font), png_skipped_because: None });
            assert_eq!(check_png(&png), (960, 960), "two panels");
        }
        None => {
            assert!(written.svg && !written.png, "{written:?}");
            assert!(written.png_skipped_because.unwrap().contains("no usable TrueType"));
            assert!(!png.exists());
        }
    }
    read_svg(&svg);
}

#[test]
fn with_a_font_folder_given_the_png_is_drawn_even_for_one_epoch() {
    let dirs = default_font_dirs();
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    let Some(font) = find_font(&dirs) else {
        // The branch without fonts is covered above on every machine.
        eprintln!("no font on this machine: the PNG with a given font folder is not tested");
        return;
    };
    let font_dir = font.parent().unwrap();
    let dir = folder("one-epoch");
    let (svg, png) = (dir.join("loss.svg"), dir.join("loss.png"));
    let written = plot_losses_with_fonts(&svg, Some(&png), &run(1, false, false), &[font_dir], None).unwrap();
    assert!(written.svg && written.png && written.png_skipped_because.is_none(), "{written:?}");
    assert!(written.png_font.unwrap().starts_with(font_dir));
    assert_eq!(check_png(&png), (960, 480), "one panel");
    assert!(read_svg(&svg).text.contains("<circle"), "the single epoch is a marked point");
    assert_eq!(listing(&dir), ["loss.png", "loss.svg"]);
}

/// Three classes: true 0 -> predicted 0, 0, 1; true 1 -> 1; true 2 -> 0, 2, 2.
fn confusion_report() -> ClassReport {
    ClassReport::new(&[0, 0, 0, 1, 2, 2, 2], &[0, 0, 1, 1, 0, 2, 2], 3)
}

#[test]
fn confusion_csv_has_a_row_per_true_class_under_the_predicted_names() {
    let dir = folder("confusion-csv");
    let path = dir.join("confusion.csv");
    // A name with a comma is quoted, as CSV needs.
    let names = ["setosa".to_string(), "versi,color".to_string(), "virginica".to_string()];
    write_confusion_csv(&path, &confusion_report(), Some(&names)).unwrap();
    let want = "true\\predicted,setosa,\"versi,color\",virginica\n\
                setosa,2,1,0\n\
                \"versi,color\",0,1,0\n\
                virginica,1,0,2\n";
    assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
    write_confusion_csv(&path, &confusion_report(), None).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("true\\predicted,0,1,2\n0,2,1,0\n"), "{text}");
    assert_eq!(listing(&dir), ["confusion.csv"], "no temporary left");
}

#[test]
fn confusion_svg_labels_its_axes_classes_and_counts() {
    let dir = folder("confusion-svg");
    let path = dir.join("confusion.svg");
    let names = ["setosa".to_string(), "versicolor".to_string(), "virginica & co".to_string()];
    plot_confusion(&path, &confusion_report(), Some(&names)).unwrap();
    let svg = read_svg_document(&path);
    for words in ["predicted", "true", "setosa", "versicolor", "virginica &amp; co"] {
        // Each class names a row and a column.
        let times = if words == "predicted" || words == "true" { 1 } else { 2 };
        assert_eq!(svg.words.iter().filter(|w| *w == words).count(), times, "{words} in {:?}", svg.words);
    }
    // Every cell holds its count: of the nine, four 0s, three 1s and two 2s.
    let counts = |n: &str| svg.words.iter().filter(|w| *w == n).count();
    assert_eq!((counts("0"), counts("1"), counts("2")), (4, 3, 2), "{:?}", svg.words);
    assert_eq!(svg.text.matches("<rect").count(), 1 + 9 + 1, "the background, the cells and the frame");
    assert_eq!(listing(&dir), ["confusion.svg"]);
}

#[test]
fn confusion_svg_of_many_classes_drops_the_counts_and_keeps_the_names() {
    let dir = folder("confusion-many");
    let path = dir.join("confusion.svg");
    let classes = 40;
    let truth: Vec<usize> = (0..200).map(|i| i % classes).collect();
    let predicted: Vec<usize> = (0..200).map(|i| (i * 7) % classes).collect();
    plot_confusion(&path, &ClassReport::new(&truth, &predicted, classes), None).unwrap();
    let svg = read_svg_document(&path);
    // Indices name the classes, once for the row and once for the column; no counts.
    assert_eq!(svg.words.iter().filter(|w| *w == "39").count(), 2, "{:?}", svg.words);
    assert_eq!(svg.words.iter().filter(|w| *w == "5").count(), 2, "only the two ticks of class 5");
}

#[test]
fn metrics_csv_of_older_run_folders_still_reads() {
    let dir = folder("csv-old");
    let path = dir.join("metrics.csv");
    for header in [
        "epoch,train_loss,test_loss,train_accuracy,test_accuracy,seconds",
        "epoch,train_loss,val_loss,train_accuracy,val_accuracy,seconds",
        "epoch,train_loss,val_loss,train_accuracy,val_accuracy,lr,seconds",
    ] {
        let lr = if header.contains(",lr,") { "," } else { "" };
        std::fs::write(&path, format!("{header}\n1,0.5,0.75,0.25,,{lr}2.5\n")).unwrap();
        let rows = wgpu_mlp::report::read_metrics_csv(&path).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].metrics.val_loss, rows[0].metrics.val_accuracy, rows[0].lr, rows[0].seconds),
            (Some(0.75), None, None, 2.5)
        );
    }
}

#[test]
fn the_plot_marks_the_kept_epoch_and_fits_the_accuracy_axis_to_the_data() {
    let dir = folder("svg-best");
    let svg = dir.join("loss.svg");
    let written = plot_losses_with_fonts(&svg, None, &run(20, true, true), &[Path::new(NO_FONTS)], Some(7)).unwrap();
    assert!(written.svg);
    let svg = read_svg(&svg);
    assert!(svg.says("best epoch 7"), "the kept epoch is named in the legend: {:?}", svg.words);
    // The accuracies run from 0.4 (validation, epoch 1) to 0.97: the accuracy
    // panel's lowest tick is near 0.4, not 0.
    let panel = svg.words.iter().position(|w| w == "accuracy per epoch").expect("an accuracy panel");
    let lowest = svg.words[panel..].iter().find_map(|w| w.parse::<f64>().ok()).expect("tick labels");
    assert!((0.3..0.45).contains(&lowest), "the axis starts near the lowest accuracy, at {lowest}: {:?}", svg.words);
}

#[test]
fn metrics_csv_round_trips_each_outputs_validation_errors() {
    let dir = folder("csv-outputs");
    let path = dir.join("metrics.csv");
    let scores = |k: f64| wgpu_mlp::metrics::OutputScores { mae: 0.1 * k, rmse: 0.3 / k, r2: 1.0 - 0.07 * k };
    let row = |epoch: usize, outputs: Option<Vec<wgpu_mlp::metrics::OutputScores>>| MetricsRow {
        epoch,
        metrics: EpochMetrics {
            train_loss: 0.5,
            train_accuracy: None,
            val_loss: Some(0.25),
            val_accuracy: None,
            val_mae: Some(0.2),
            val_rmse: Some(0.2),
            val_r2: Some(0.9),
            val_outputs: outputs,
        },
        lr: None,
        epsilon: None,
        seconds: 1.5,
    };
    let rows = vec![row(1, Some(vec![scores(1.0), scores(3.0)])), row(2, Some(vec![scores(7.0), scores(0.5)]))];
    write_metrics_csv(&path, &rows, wgpu_mlp::report::metrics_outputs(&rows)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.lines().next().unwrap().ends_with(",seconds,val_mae_0,val_rmse_0,val_r2_0,val_mae_1,val_rmse_1,val_r2_1"),
        "{text}"
    );
    assert_eq!(read_metrics_csv(&path).unwrap(), rows, "every output's figures as written");
}
