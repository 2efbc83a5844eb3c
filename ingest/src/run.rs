//! `auditty-ingest run`: passes over the source until told to stop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use schemas::data_dir::DataDir;
use store::StoreUrl;

use crate::cli::{LagArgs, RunArgs};
use crate::kafka_source::KafkaSourceConfig;
use crate::lag::{LagMetrics, LagProbe};
use crate::notify::{Notifier, WebhookConfig};
use crate::spool_source::{PassSummary, SpoolSource};
use crate::telemetry::IngestMetrics;

/// Grace given at exit to webhook notifications still queued.
const WEBHOOK_GRACE: Duration = Duration::from_secs(30);

/// Where records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUrl {
    /// `spool:DIR`.
    Spool(PathBuf),
    /// `kafka://BROKERS/TOPIC`.
    Kafka {
        /// Bootstrap servers.
        brokers: String,
        /// Topic.
        topic: String,
    },
}

/// Parses `spool:DIR` (also `spool://DIR`) or `kafka://HOST:PORT[,…]/TOPIC`.
pub fn parse_source(s: &str) -> anyhow::Result<SourceUrl> {
    if let Some(rest) = s.strip_prefix("spool:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        if rest.is_empty() {
            bail!("source {s:?} names no directory; expected spool:DIR");
        }
        return Ok(SourceUrl::Spool(PathBuf::from(rest)));
    }
    if let Some(rest) = s.strip_prefix("kafka://") {
        let Some((brokers, topic)) = rest.split_once('/') else {
            bail!("source {s:?} names no topic; expected kafka://HOST:PORT/TOPIC");
        };
        if brokers.is_empty() || topic.is_empty() || topic.contains('/') {
            bail!("source {s:?} is not kafka://HOST:PORT[,HOST:PORT…]/TOPIC");
        }
        return Ok(SourceUrl::Kafka {
            brokers: brokers.into(),
            topic: topic.into(),
        });
    }
    bail!("source {s:?} is not understood; expected spool:DIR or kafka://HOST:PORT/TOPIC")
}

/// Runs the ingester.
pub fn run(data_dir: Option<&Path>, args: RunArgs) -> anyhow::Result<()> {
    let resolve = || DataDir::resolve(data_dir);
    let source = match &args.source {
        Some(s) => parse_source(s)?,
        None => SourceUrl::Spool(resolve()?.spool()),
    };
    let store_url = match &args.store {
        Some(s) => args.s3.store_url(s)?,
        None => StoreUrl::Local(resolve()?.store()),
    };
    let store = store_url.open().map_err(|e| match e {
        // It names the store and the action already.
        e @ store::StoreError::Remote { .. } => anyhow::Error::new(e),
        e => anyhow::Error::new(e).context(format!("cannot open store {store_url}")),
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }
    let registry = metrics::Registry::new();
    let out = Outputs {
        telemetry: IngestMetrics::register(&registry),
        registry,
        webhook: match &args.notify_webhook {
            Some(url) => Some(WebhookConfig::new(
                url,
                args.notify_webhook_secret_file.as_deref(),
                args.notify_webhook_attempts,
                args.notify_webhook_queue,
            )?),
            None => None,
        },
    };
    match source {
        SourceUrl::Spool(dir) => run_spool(&args, dir, store.as_ref(), &store_url, &stop, out),
        SourceUrl::Kafka { brokers, topic } => run_kafka(
            &args,
            &brokers,
            &topic,
            store.as_ref(),
            &store_url,
            &stop,
            out,
        ),
    }
}

/// What a run reports to, besides the store: metrics and the webhook.
struct Outputs {
    registry: metrics::Registry,
    telemetry: IngestMetrics,
    webhook: Option<WebhookConfig>,
}

fn run_spool(
    args: &RunArgs,
    dir: PathBuf,
    store: &dyn store::ObjectStore,
    store_url: &StoreUrl,
    stop: &AtomicBool,
    out: Outputs,
) -> anyhow::Result<()> {
    if args.notify_topic.is_some() {
        bail!(
            "--notify-topic needs a kafka:// --source (its brokers receive the notifications); \
             with a spool source use --notify-webhook"
        );
    }
    serve_metrics(args, out.registry)?;
    let telemetry = out.telemetry;
    let notifier = Notifier::new(None, out.webhook, telemetry.clone())?;
    let source = SpoolSource::new(dir);

    let mut total = PassSummary::default();
    let started = Instant::now();
    loop {
        let pass = source
            .pass(store, stop, &notifier, &telemetry)
            .with_context(|| format!("ingesting {} into {store_url} failed; nothing past the last durable object was marked ingested, so a re-run picks up from there", source.dir().display()))?;
        accumulate(&mut total, &pass);
        if args.once || stop.load(Ordering::Relaxed) {
            break;
        }
        let wake = Instant::now() + Duration::from_millis(args.poll_interval_ms);
        while Instant::now() < wake && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    notifier.finish(WEBHOOK_GRACE);
    if !args.quiet {
        eprintln!(
            "auditty-ingest: {} events and {} session rows from {} spool files into {store_url} in {:.1}s ({} objects; {} dead letters, {} damaged stretches, {} torn tails; {} files done and removed)",
            total.written.events,
            total.written.sessions,
            total.segments,
            started.elapsed().as_secs_f64(),
            total.written.objects,
            total.written.dead_letters,
            total.damaged,
            total.torn_tails,
            total.deleted,
        );
    }
    if total.failed > 0 {
        bail!(
            "{} spool files could not be read (see above); they were left in place",
            total.failed
        );
    }
    Ok(())
}

fn accumulate(total: &mut PassSummary, pass: &PassSummary) {
    total.segments += pass.segments;
    total.written += pass.written;
    total.damaged += pass.damaged;
    total.torn_tails += pass.torn_tails;
    total.deleted += pass.deleted;
    total.failed += pass.failed;
}

/// Serves `registry` on --metrics-listen, if given.
fn serve_metrics(args: &RunArgs, registry: metrics::Registry) -> anyhow::Result<()> {
    if let Some(addr) = &args.metrics_listen {
        metrics::serve(addr, registry)?;
    }
    Ok(())
}

fn run_kafka(
    args: &RunArgs,
    brokers: &str,
    topic: &str,
    store: &dyn store::ObjectStore,
    store_url: &StoreUrl,
    stop: &Arc<AtomicBool>,
    out: Outputs,
) -> anyhow::Result<()> {
    let options = args.kafka.options(brokers)?;
    if args.metrics_listen.is_some() {
        // The group's lag, as an outside observer measures it (see lag.rs).
        crate::lag::spawn_watch(
            options.clone(),
            topic.to_string(),
            args.group.clone(),
            LagMetrics::register(&out.registry),
            Duration::from_millis(args.lag_interval_ms.max(100)),
            Arc::clone(stop),
        )?;
    }
    serve_metrics(args, out.registry)?;
    let notifier = Notifier::new(
        args.notify_topic.clone().map(|t| (&options, t)),
        out.webhook,
        out.telemetry.clone(),
    )?;
    let config = KafkaSourceConfig {
        options,
        topic: topic.to_string(),
        group: args.group.clone(),
        max_batch_events: args.max_batch_events.max(1),
        max_batch_bytes: args.max_batch_bytes.max(1),
        max_batch_age: Duration::from_millis(args.max_batch_age_ms),
        max_record_bytes: args.max_record_bytes,
        exit_when_idle: args.once.then(|| Duration::from_millis(args.idle_exit_ms)),
        give_up_unreachable: args.once.then(|| Duration::from_secs(args.broker_wait)),
    };
    tracing::info!(%brokers, %topic, group = %args.group, store = %store_url, "Consuming.");
    let started = Instant::now();
    let result = crate::kafka_source::run(&config, store, stop, &notifier, &out.telemetry);
    notifier.finish(WEBHOOK_GRACE);
    let summary = result
        .with_context(|| format!("ingesting kafka://{brokers}/{topic} into {store_url} failed; offsets were committed only for durable objects, so a restart picks up from there"))?;
    if !args.quiet {
        eprintln!(
            "auditty-ingest: {} events and {} session rows from {} Kafka records into {store_url} in {:.1}s ({} batches, {} objects; {} dead letters)",
            summary.written.events,
            summary.written.sessions,
            summary.records,
            started.elapsed().as_secs_f64(),
            summary.batches,
            summary.written.objects,
            summary.written.dead_letters,
        );
    }
    Ok(())
}

/// `auditty-ingest lag`: a group's lag on a topic, measured without joining the group.
pub fn lag(args: &LagArgs) -> anyhow::Result<()> {
    let SourceUrl::Kafka { brokers, topic } = parse_source(&args.source)? else {
        bail!(
            "lag needs a kafka://HOST:PORT/TOPIC --source (a spool's backlog is the shipper's \
             auditty_spool_bytes)"
        );
    };
    let options = args.kafka.options(&brokers)?;
    let probe = LagProbe::new(&options, &topic, &args.group)?;
    if args.once {
        let parts = probe.measure().with_context(|| {
            format!(
                "cannot measure the lag of group {} on kafka://{brokers}/{topic}",
                args.group
            )
        })?;
        print!("{}", crate::lag::table(&topic, &args.group, &parts));
        return Ok(());
    }
    let Some(addr) = &args.metrics_listen else {
        bail!(
            "lag has nothing to do: give --once to print the lag, or --metrics-listen ADDR:PORT to serve it"
        );
    };
    let registry = metrics::Registry::new();
    let lag = LagMetrics::register(&registry);
    metrics::serve(addr, registry)?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install signal handlers")?;
    }
    tracing::info!(%brokers, %topic, group = %args.group, "Measuring consumer lag.");
    crate::lag::watch(
        &probe,
        &lag,
        Duration::from_millis(args.interval_ms.max(100)),
        &stop,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_nonsense_is_explained() {
        assert_eq!(
            parse_source("spool:/var/spool/auditty").unwrap(),
            SourceUrl::Spool("/var/spool/auditty".into())
        );
        assert_eq!(
            parse_source("spool:///x").unwrap(),
            SourceUrl::Spool("/x".into())
        );
        assert_eq!(
            parse_source("kafka://k1:9092,k2:9092/auditty.events").unwrap(),
            SourceUrl::Kafka {
                brokers: "k1:9092,k2:9092".into(),
                topic: "auditty.events".into()
            }
        );
        assert!(
            parse_source("kafka://k1:9092")
                .unwrap_err()
                .to_string()
                .contains("names no topic")
        );
        assert!(
            parse_source("s3://bucket")
                .unwrap_err()
                .to_string()
                .contains("kafka://HOST:PORT/TOPIC")
        );
        assert!(parse_source("spool:").is_err());
    }
}
