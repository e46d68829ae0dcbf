// Package config is hitship's one YAML configuration file: the Config
// struct, its defaults, strict parsing, secrets and validation.
//
// # Guarantees
//
//   - Defaults live in one place, [Default] (and [DefaultIntegration] for one
//     integrations[] entry). [Parse] and [Load] decode the file on top of them.
//   - Parsing is strict: unknown keys, wrong types and duplicate keys are
//     [Problem]s naming the key path (such as "integrations[1].bucket") and
//     the line. [Config.Validate] reports every problem, not the first, each
//     with a Fix sentence. [AsError] turns problems into one error for main.
//   - Secrets never come from the YAML: each secret has an *_env key naming an
//     environment variable and a *_file key naming a file; exactly one is set.
//     Validate reads them into unexported fields behind [Secret], available
//     from methods (SASL.Password, Redis.Password, HTTP.AdminToken,
//     Credentials.SecretAccessKey, ExternalID.Secret). Formatting a Config or
//     a Secret with any fmt verb, slog or a marshaller never prints a secret.
//     Nor does a Problem print what may be a secret pasted into the wrong key:
//     the value of an *_env key that is not a variable name (or is an unset
//     one not in the upper-case convention), or the path of a *_file or TLS
//     file key that cannot be opened. Their Fix says to put the secret in a
//     variable or a file and name that here.
//   - config does not import the packages it configures: the key-template
//     parser is injected with [WithKeyTemplate].
//   - Functions here do no I/O except Load (reads the file) and Validate
//     (reads secret and TLS files and the environment). A Config is a plain
//     value: not safe for concurrent mutation; reading it concurrently after
//     Validate is safe.
//
// # Keys
//
// Durations are Go duration strings ("30s", "10m"); sizes are [Size]s
// ("64MiB", "1GB", or bytes). Defaults in parentheses.
//
//	kafka.brokers                  list of host:port ([localhost:9092])
//	kafka.topic                    source topic (hits)
//	kafka.group                    consumer group id (hitship)
//	kafka.client_id                Kafka client id (hitship)
//	kafka.dead_letter_topic        topic for bad records, not kafka.topic (hits-dead-letter)
//	kafka.integrations_topic       compacted topic holding the integrations' runtime state
//	                               (hitship-integrations); created at start when missing
//	kafka.events_topic             ("") topic that receives the integrations' system events
//	                               (create_integration ... integration_broken), for the
//	                               platform's notifications; "" sends none. It must exist
//	kafka.max_record_bytes         larger records are dead letters (1MiB, at most 1GiB)
//	kafka.max_depth                JSON nesting limit, 1..10000 (512)
//	kafka.sasl.mechanism           none | plain | scram-sha-256 | scram-sha-512 | aws_msk_iam (none)
//	kafka.sasl.username            required unless mechanism is none or aws_msk_iam
//	kafka.sasl.password_env        env var holding the SASL password
//	kafka.sasl.password_file       file holding the SASL password
//	kafka.sasl.aws_region          aws_msk_iam only: the MSK cluster's region ("" = AWS_REGION);
//	                               hitship signs with its own AWS identity; needs kafka.tls
//	kafka.tls.enabled              TLS to the brokers (false)
//	kafka.tls.ca_file              PEM CA bundle; system roots when empty
//	kafka.tls.cert_file            PEM client certificate, with key_file
//	kafka.tls.key_file             PEM client key, with cert_file
//	kafka.tls.insecure_skip_verify skip server certificate checks (false)
//	kafka.tls.server_name          SNI / verification name override
//	kafka.session_timeout          group session timeout (30s)
//	kafka.rebalance_timeout        group rebalance timeout (30s)
//	kafka.heartbeat_interval       less than session_timeout (3s)
//	kafka.commit_interval          offset commit period (1s)
//	window.size                    whole seconds dividing 24h (10m)
//	window.grace                   watermark lag, less than size (1m)
//	window.idle_timeout            quiet partition follows the clock after this (30s)
//	window.timestamp               event | record (event)
//	window.max_future_skew         hit time further ahead of the record is clamped (5m)
//	spool.dir                      local spool directory (/var/lib/hitship/spool); one
//	                               process's alone: it is locked, a second one is refused
//	spool.max_bytes                spool disk limit (10GiB)
//	spool.memory_bytes             in-memory buffering before spilling (64MiB)
//	delivery.concurrency           parallel uploads, 1..1024 (16)
//	delivery.upload_timeout        one upload attempt (60s), plus 1 s per 4 MiB of the object
//	delivery.retry_min             first in-process retry delay (1s)
//	delivery.retry_max             longest in-process retry delay, >= retry_min (30s)
//	delivery.health_min_attempts   (0 = 20): attempts in 12 h before auto-disable at
//	                               >= 60% failures on the customer's side (kept with
//	                               or without parking)
//	delivery.health_min_failing    customer-side failures must span this long, first
//	                               to last, before auto-disable; 0 < d <= 12h (1h)
//	s3.endpoint                    http(s) URL of an S3-compatible store; "" = AWS
//	s3.path_style                  path-style addressing (false)
//	s3.if_none_match               send If-None-Match: * (true)
//	s3.multipart_threshold         multipart above this size, >= 5MiB (64MiB)
//	s3.part_size                   5MiB..5GiB (16MiB)
//	s3.allow_abort                 AbortMultipartUpload is granted (false)
//	s3.key_template                object key layout, checked by the injected parser; needs
//	                               {prefix} first, {partition}, {first_offset} and {digest}
//	                               ({prefix}wallarm_hits_{window_start}_{partition}_{first_offset}_{digest}.{ext})
//	redis.mode                     single | sentinel | cluster (single)
//	redis.addr                     host:port (127.0.0.1:6379); single: the server, cluster: the
//	                               configuration endpoint when addrs is empty
//	redis.addrs[]                  sentinel: the sentinels; cluster: seed nodes
//	redis.master_name              sentinel: the master's name; required there
//	redis.sentinel_username        sentinel: the sentinels' ACL user; needs a password
//	redis.sentinel_password_env    sentinel: env var holding the sentinels' password
//	redis.sentinel_password_file   file holding it
//	redis.wait_replicas            replicas that must acknowledge each write (WAIT); unset =
//	                               one while the master has a replica connected; 0 = never
//	redis.wait_timeout             bound of that wait (1s); past it the write is an error
//	redis.username                 ACL user; needs a password
//	redis.password_env             env var holding the password; none = no AUTH
//	redis.password_file            file holding the password
//	redis.db                       database number >= 0 (0)
//	redis.tls.*                    as kafka.tls.*
//	redis.key_prefix               prefix of every Redis key (hitship:); cluster: must hold a
//	                               hash tag, and the default is read as {hitship}:
//	http.listen                    metrics/health/admin listener (:9464)
//	http.admin_token_env           env var holding the /v1/ bearer token (>= 16 chars)
//	http.admin_token_file          file holding it; neither (and no admin_tokens) = admin API disabled
//	http.admin_tokens[]            named tokens: name, token_env or token_file; every change
//	                               records "admin-api:{name}@{peer}" as who made it
//	log.format                     json | text (json)
//	log.level                      debug | info | warn | error (info)
//	external_id.secret_env         env var holding the external-ID HMAC secret
//	external_id.secret_file        file holding it; required when a role_arn is used
//	external_id.previous_secret_env/_file   while the secret is rotated: the one before
//	                               it; a role refusing the current external ID is
//	                               assumed with the previous one's (README)
//	parking.bucket                 the operator's parking bucket; "" turns parking off
//	                               (failed uploads then retry in-process, holding the offset)
//	parking.region                 required with bucket; a known AWS region (a typo gets a
//	                               "did you mean"), any plain name with parking.endpoint
//	parking.endpoint               S3-compatible override ("" = AWS)
//	parking.prefix                 (hitship/): parked objects under {prefix}parked/,
//	                               dead letters under {prefix}dead/
//	parking.path_style             (false)
//	parking.credentials.*          access_key_id + secret_access_key_env/_file, or none
//	                               for hitship's own AWS identity (no role_arn)
//	secrets.keys_env               env var holding the key ring that seals the secrets of
//	                               integrations created through the admin API: one
//	                               "ID:BASE64KEY" per line (32 random bytes each), the
//	                               newest last; all listed keys open, the newest seals
//	secrets.keys_file              file holding it (one of the two; neither: only role
//	                               integrations can be created through the API)
//	integrations[].name            unique, a-z 0-9 . _ -, up to 63 chars (required)
//	integrations[].client_id       customer account id > 0 (required)
//	integrations[].enabled         (true)
//	integrations[].region          AWS region such as eu-central-1 (required): a known AWS
//	                               region (a typo gets a "did you mean"), or any plain name
//	                               when an endpoint (its own or s3.endpoint) names an
//	                               S3-compatible store, unless it assumes a role_arn
//	                               without external_id.sts_endpoint (STS is regional)
//	integrations[].bucket          S3 bucket name rules (required)
//	integrations[].prefix          key prefix: no leading "/", no "." or ".." segments,
//	                               no control characters, <= 512 bytes ("")
//	integrations[].type            s3 | security_lake (s3): security_lake is a custom
//	                               source of Amazon Security Lake (needs staged delivery)
//	integrations[].security_lake.source_name     the custom source's name, <= 20 chars
//	integrations[].security_lake.source_version  its version, when it has one ("")
//	integrations[].security_lake.account_id      the accountId= partition (the account
//	                               of credentials.role_arn)
//	integrations[].format          json | ndjson | ocsf | ocsf-json | parquet | ocsf-parquet
//	                               (json; security_lake: ocsf-parquet, the only one it takes);
//	                               all but json and ndjson need staged delivery
//	integrations[].compression     none | gzip (none)
//	integrations[].events          subset of [hits], non-empty ([hits])
//	integrations[].endpoint        per-integration override of s3.endpoint
//	integrations[].path_style      path-style addressing for this integration (false)
//	integrations[].credentials.role_arn               IAM role assumed with the derived ExternalId
//	integrations[].credentials.access_key_id          static key id (instead of role_arn)
//	integrations[].credentials.secret_access_key_env  env var holding the static secret key
//	integrations[].credentials.secret_access_key_file file holding it
//
// Two integrations may not share the same endpoint, bucket and prefix: their
// objects would overwrite each other. config/example.yaml shows every key.
package config
