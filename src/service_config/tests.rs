use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::health::{FailurePercentage, SuccessRate};

fn parse(json: &str) -> Result<ServiceConfig, Error> {
    ServiceConfig::from_json(json)
}

fn lb(entries: &str) -> Result<ServiceConfig, Error> {
    parse(&format!(r#"{{"loadBalancingConfig": [{entries}]}}"#))
}

fn policy(entries: &str) -> Policy {
    lb(entries).unwrap().policy().unwrap().clone()
}

/// The error's message without the crate's prefix.
fn err(json: &str) -> String {
    match parse(json) {
        Err(Error::InvalidConfig(m)) => m,
        other => panic!("expected InvalidConfig for {json}, got {other:?}"),
    }
}

#[test]
fn each_policy_maps() {
    assert_eq!(policy(r#"{"pick_first": {}}"#), Policy::pick_first());
    assert_eq!(
        policy(r#"{"pick_first": {"shuffleAddressList": false}}"#),
        Policy::pick_first()
    );
    let shuffled = policy(r#"{"pick_first": {"shuffleAddressList": true}}"#);
    assert!(matches!(
        shuffled.kind,
        crate::policy::Kind::PickFirst { salt: Some(_) }
    ));
    assert_eq!(policy(r#"{"round_robin": {}}"#), Policy::round_robin());
    assert_eq!(policy(r#"{"round_robin": null}"#), Policy::round_robin());
    assert_eq!(
        policy(
            r#"{"weighted_round_robin": {"enableOobLoadReport": true, "oobReportingPeriod": "10s",
                "blackoutPeriod": "10s", "weightExpirationPeriod": "180s",
                "weightUpdatePeriod": "1s", "errorUtilizationPenalty": 1.0}}"#
        ),
        Policy::weighted_round_robin(
            crate::WeightedRoundRobin::default().out_of_band(true, Duration::from_secs(10))
        )
    );
    assert_eq!(
        policy(
            r#"{"weighted_round_robin": {"blackoutPeriod": "0s", "weightUpdatePeriod": "0.05s",
                "weightExpirationPeriod": "60s", "errorUtilizationPenalty": 2}}"#
        ),
        Policy::weighted_round_robin(
            crate::WeightedRoundRobin::default()
                .blackout_period(Duration::ZERO)
                .weight_update_period(Duration::from_millis(100))
                .weight_expiration_period(Duration::from_secs(60))
                .error_utilization_penalty(2.0)
                .unwrap()
        )
    );
    assert_eq!(
        policy(r#"{"weighted_round_robin": {}}"#),
        Policy::weighted_round_robin(crate::WeightedRoundRobin::default())
    );
    assert_eq!(
        policy(r#"{"least_request_experimental": {}}"#),
        Policy::p2c_in_flight()
    );
    assert_eq!(
        policy(r#"{"least_request_experimental": {"choiceCount": 3}}"#),
        Policy::least_request(3).unwrap()
    );
    let ring = policy(r#"{"ring_hash_experimental": {"requestHashHeader": "x-user-id"}}"#);
    let expected = Policy::ring_hash(crate::HashKey::header("x-user-id").unwrap())
        .ring_size(1024, 4096)
        .unwrap();
    assert_eq!(ring, expected);
}

#[test]
fn defaults_and_clamping() {
    // A48: above 10 is 10.
    assert_eq!(
        policy(r#"{"least_request_experimental": {"choiceCount": 100}}"#),
        Policy::least_request(10).unwrap()
    );
    assert_eq!(
        policy(r#"{"least_request_experimental": {"choiceCount": "4294967295"}}"#),
        Policy::least_request(10).unwrap()
    );
    let table = |p: Policy| p.hashing.unwrap().table;
    let ring = |min, max| {
        table(
            Policy::ring_hash(crate::HashKey::path())
                .ring_size(min, max)
                .unwrap(),
        )
    };
    assert_eq!(
        table(policy(r#"{"ring_hash_experimental": {}}"#)),
        ring(1024, 4096)
    );
    // Strings and numbers alike; 0 is "not set".
    assert_eq!(
        table(policy(
            r#"{"ring_hash_experimental": {"minRingSize": "10", "maxRingSize": 0}}"#
        )),
        ring(10, 4096)
    );
    // Capped at the largest ring.
    assert_eq!(
        table(policy(
            r#"{"ring_hash_experimental": {"minRingSize": 4096, "maxRingSize": "18446744073709551615"}}"#
        )),
        ring(4096, 8 * 1024 * 1024)
    );
    assert_eq!(
        table(policy(
            r#"{"ring_hash_experimental": {"minRingSize": 1e300, "maxRingSize": "99999999999999999999999"}}"#
        )),
        ring(8 * 1024 * 1024, 8 * 1024 * 1024)
    );
    // No header: every request is keyless, so the fallback balances it.
    let keyless = policy(r#"{"ring_hash_experimental": {"requestHashHeader": ""}}"#);
    let request = http::Request::builder().body(()).unwrap();
    assert_eq!(keyless.request_hash(&request), None);
    assert_eq!(keyless.kind, Policy::default().kind);
}

#[test]
fn unknown_policies_are_skipped_and_the_first_supported_wins() {
    let config = lb(
        r#"{"grpclb": {}}, {"xds_cluster_impl_experimental": {"x": 1}},
                       {"round_robin": {}}, {"pick_first": {}}"#,
    )
    .unwrap();
    assert_eq!(config.policy(), Some(&Policy::round_robin()));
    assert_eq!(config.policy_name(), Some("round_robin"));
    // Only the first supported entry is read: a broken later one does not matter.
    assert!(lb(r#"{"round_robin": {}}, {"ring_hash_experimental": {"minRingSize": "x"}}"#).is_ok());
    let e = err(r#"{"loadBalancingConfig": [{"grpclb": {}}, {"xds": {}}]}"#);
    assert!(
        e.starts_with(r#"service config: loadBalancingConfig: no supported policy: none of ["grpclb", "xds"] is supported"#),
        "{e}"
    );
    let e = err(r#"{"loadBalancingConfig": []}"#);
    assert!(e.contains("the list is empty"), "{e}");
}

#[test]
fn deprecated_load_balancing_policy() {
    let p = |json: &str| parse(json).unwrap().policy().cloned();
    assert_eq!(
        p(r#"{"loadBalancingPolicy": "ROUND_ROBIN"}"#),
        Some(Policy::round_robin())
    );
    assert_eq!(
        p(r#"{"loadBalancingPolicy": "pick_first"}"#),
        Some(Policy::pick_first())
    );
    assert_eq!(p(r#"{"loadBalancingPolicy": "grpclb"}"#), None);
    // loadBalancingConfig wins.
    assert_eq!(
        p(r#"{"loadBalancingPolicy": "round_robin", "loadBalancingConfig": [{"pick_first": {}}]}"#),
        Some(Policy::pick_first())
    );
    assert!(
        err(r#"{"loadBalancingPolicy": 3}"#).contains("loadBalancingPolicy: expected a string")
    );
}

#[test]
fn outlier_detection_maps_a50() {
    let config = parse(
        r#"{"outlierDetection": {
            "interval": "1.5s", "baseEjectionTime": "2s", "maxEjectionTime": "20s",
            "maxEjectionPercent": 40,
            "successRateEjection": {"stdevFactor": 1500, "enforcementPercentage": 90,
                                    "minimumHosts": 3, "requestVolume": "10"},
            "failurePercentageEjection": {"threshold": 60, "enforcementPercentage": 80,
                                          "minimumHosts": 4, "requestVolume": 20}
        }, "methodConfig": [{"name": [{}], "timeout": "1s"}], "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1}}"#,
    )
    .unwrap();
    let expected = OutlierDetection::default()
        .interval(Duration::from_millis(1500))
        .base_ejection_time(Duration::from_secs(2))
        .max_ejection_time(Duration::from_secs(20))
        .max_ejection_percent(40)
        .consecutive_failures(None)
        .success_rate(Some(
            SuccessRate::default()
                .stdev_factor(1.5)
                .enforcement_percent(90)
                .minimum_hosts(3)
                .request_volume(10),
        ))
        .failure_percentage(Some(
            FailurePercentage::default()
                .threshold(60)
                .enforcement_percent(80)
                .minimum_hosts(4)
                .request_volume(20),
        ));
    assert_eq!(config.outlier_detection(), Some(expected));
    assert_eq!(config.policy(), None);

    // Detectors present but empty take A50's defaults; absent ones are off.
    let od = parse(r#"{"outlierDetection": {"successRateEjection": {}}}"#)
        .unwrap()
        .outlier_detection()
        .unwrap();
    assert_eq!(od.success_rate, Some(SuccessRate::default()));
    assert_eq!(od.failure_percentage, None);
    assert_eq!(od.consecutive_failures, None);
    assert!(od.validate().is_ok());
}

#[test]
fn outlier_detection_policy_wraps_its_child() {
    let config = lb(r#"{"outlier_detection_experimental": {
            "interval": "3s",
            "failurePercentageEjection": {},
            "childPolicy": [{"unknown": {}}, {"least_request_experimental": {"choiceCount": 5}}]
        }}"#)
    .unwrap();
    assert_eq!(config.policy(), Some(&Policy::least_request(5).unwrap()));
    assert_eq!(config.policy_name(), Some("least_request_experimental"));
    let od = config.outlier_detection().unwrap();
    assert_eq!(od.interval, Duration::from_secs(3));
    assert_eq!(od.failure_percentage, Some(FailurePercentage::default()));

    let e = err(r#"{"loadBalancingConfig": [{"outlier_detection_experimental": {}}]}"#);
    assert!(
        e.contains("loadBalancingConfig[0].outlier_detection_experimental.childPolicy: required"),
        "{e}"
    );
    let e = err(
        r#"{"loadBalancingConfig": [{"outlier_detection_experimental": {"childPolicy":
        [{"outlier_detection_experimental": {"childPolicy": [{"round_robin": {}}]}}]}}]}"#,
    );
    assert!(
        e.contains("childPolicy[0].outlier_detection_experimental: outlier detection inside"),
        "{e}"
    );
    let e = err(
        r#"{"outlierDetection": {}, "loadBalancingConfig": [{"outlier_detection_experimental":
        {"childPolicy": [{"round_robin": {}}]}}]}"#,
    );
    assert!(e.contains("outlierDetection: given twice"), "{e}");
}

#[cfg(feature = "health")]
#[test]
fn health_check_config() {
    let config = parse(r#"{"healthCheckConfig": {"serviceName": "echo.Echo"}}"#).unwrap();
    assert_eq!(
        config.health_check(),
        Some(&HealthCheck::grpc().service("echo.Echo"))
    );
    let config = parse(r#"{"healthCheckConfig": {}}"#).unwrap();
    assert_eq!(config.health_check(), Some(&HealthCheck::grpc()));
    assert!(
        err(r#"{"healthCheckConfig": {"serviceName": 1}}"#)
            .contains("healthCheckConfig.serviceName: expected a string, got 1")
    );
}

#[cfg(not(feature = "health"))]
#[test]
fn health_check_config_needs_the_health_feature() {
    let e = err(r#"{"healthCheckConfig": {"serviceName": "echo.Echo"}}"#);
    assert!(
        e.contains("healthCheckConfig: health checks need tower-lb's `health` feature"),
        "{e}"
    );
}

#[test]
fn every_error_names_its_field() {
    let cases = [
        (r#"[]"#, "service config: expected a JSON object, got []"),
        (r#"{"#, "service config: invalid JSON: EOF while parsing"),
        (
            r#"{"loadBalancingConfig": {}}"#,
            "loadBalancingConfig: expected a list of policies, got {}",
        ),
        (
            r#"{"loadBalancingConfig": [1]}"#,
            "loadBalancingConfig[0]: expected an object, got 1",
        ),
        (
            r#"{"loadBalancingConfig": [{}]}"#,
            "loadBalancingConfig[0]: expected exactly one policy name as the key, got 0 keys",
        ),
        (
            r#"{"loadBalancingConfig": [{"round_robin": {}, "pick_first": {}}]}"#,
            "got 2 keys",
        ),
        (
            r#"{"loadBalancingConfig": [{"round_robin": []}]}"#,
            "loadBalancingConfig[0].round_robin: expected an object, got []",
        ),
        (
            r#"{"loadBalancingConfig": [{"pick_first": {"shuffleAddressList": "yes"}}]}"#,
            r#"loadBalancingConfig[0].pick_first.shuffleAddressList: expected true or false, got "yes""#,
        ),
        (
            r#"{"loadBalancingConfig": [{"least_request_experimental": {"choiceCount": 1}}]}"#,
            "loadBalancingConfig[0].least_request_experimental.choiceCount: must be at least 2, got 1",
        ),
        (
            r#"{"loadBalancingConfig": [{"least_request_experimental": {"choiceCount": -3}}]}"#,
            "choiceCount: expected an unsigned integer, got -3",
        ),
        (
            r#"{"loadBalancingConfig": [{"ring_hash_experimental": {"minRingSize": "abc"}}]}"#,
            r#"service config: loadBalancingConfig[0].ring_hash_experimental.minRingSize: expected an unsigned integer, got "abc""#,
        ),
        (
            r#"{"loadBalancingConfig": [{"ring_hash_experimental": {"minRingSize": 5000}}]}"#,
            "loadBalancingConfig[0].ring_hash_experimental: minRingSize 5000 is above maxRingSize 4096",
        ),
        (
            r#"{"loadBalancingConfig": [{"ring_hash_experimental": {"requestHashHeader": "x-id-bin"}}]}"#,
            "requestHashHeader: \"x-id-bin\" is a binary header",
        ),
        (
            r#"{"loadBalancingConfig": [{"ring_hash_experimental": {"requestHashHeader": "not a header"}}]}"#,
            "requestHashHeader: \"not a header\" is not a valid header name",
        ),
        (
            r#"{"loadBalancingConfig": [{"weighted_round_robin": {"blackoutPeriod": "-1s"}}]}"#,
            "weighted_round_robin.blackoutPeriod: must not be negative",
        ),
        (
            r#"{"loadBalancingConfig": [{"weighted_round_robin": {"errorUtilizationPenalty": -1}}]}"#,
            "errorUtilizationPenalty: expected a finite number >= 0, got -1",
        ),
        (
            r#"{"loadBalancingConfig": [{"weighted_round_robin": {"enableOobLoadReport": 1}}]}"#,
            "enableOobLoadReport: expected true or false",
        ),
        (
            r#"{"outlierDetection": []}"#,
            "outlierDetection: expected an object",
        ),
        (
            r#"{"outlierDetection": {"interval": "0s"}}"#,
            "outlierDetection.interval: must be above 0",
        ),
        (
            r#"{"outlierDetection": {"interval": 10}}"#,
            "outlierDetection.interval: expected a duration such as \"10s\"",
        ),
        (
            r#"{"outlierDetection": {"baseEjectionTime": "1m"}}"#,
            "outlierDetection.baseEjectionTime: expected a duration",
        ),
        (
            r#"{"outlierDetection": {"maxEjectionTime": "-0.5s"}}"#,
            "outlierDetection.maxEjectionTime: must not be negative",
        ),
        (
            r#"{"outlierDetection": {"maxEjectionPercent": 101}}"#,
            "outlierDetection.maxEjectionPercent: 101 is out of range (at most 100)",
        ),
        (
            r#"{"outlierDetection": {"successRateEjection": 1}}"#,
            "outlierDetection.successRateEjection: expected an object",
        ),
        (
            r#"{"outlierDetection": {"successRateEjection": {"stdevFactor": 1.9}}}"#,
            "outlierDetection.successRateEjection.stdevFactor: expected an unsigned integer, got 1.9",
        ),
        (
            r#"{"outlierDetection": {"successRateEjection": {"enforcementPercentage": 200}}}"#,
            "successRateEjection.enforcementPercentage: 200 is out of range",
        ),
        (
            r#"{"outlierDetection": {"successRateEjection": {"minimumHosts": 4294967296}}}"#,
            "successRateEjection.minimumHosts: 4294967296 is out of range",
        ),
        (
            r#"{"outlierDetection": {"successRateEjection": {"requestVolume": "NaN"}}}"#,
            "successRateEjection.requestVolume: expected an unsigned integer",
        ),
        (
            r#"{"outlierDetection": {"failurePercentageEjection": {"threshold": 101}}}"#,
            "failurePercentageEjection.threshold: 101 is out of range",
        ),
        (
            r#"{"outlierDetection": {"failurePercentageEjection": {"enforcementPercentage": "x"}}}"#,
            "failurePercentageEjection.enforcementPercentage: expected an unsigned integer",
        ),
        (
            r#"{"outlierDetection": {"failurePercentageEjection": {"minimumHosts": true}}}"#,
            "failurePercentageEjection.minimumHosts: expected an unsigned integer",
        ),
        (
            r#"{"outlierDetection": {"failurePercentageEjection": {"requestVolume": {}}}}"#,
            "failurePercentageEjection.requestVolume: expected an unsigned integer",
        ),
        (
            r#"{"healthCheckConfig": "echo"}"#,
            "healthCheckConfig: expected an object",
        ),
    ];
    for (json, expected) in cases {
        let e = err(json);
        assert!(
            e.contains(expected),
            "{json}\n  gave {e}\n  expected {expected}"
        );
    }
}

#[test]
fn hostile_inputs_do_not_panic() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(err(&deep).contains("invalid JSON"));
    let deep_lb = format!(
        r#"{{"loadBalancingConfig": {}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(parse(&deep_lb).is_err());
    for json in [
        "",
        "null",
        "1e999",
        r#""{}""#,
        r#"{"loadBalancingConfig": [{"ring_hash_experimental": {"minRingSize": 1e999}}]}"#,
        r#"{"loadBalancingConfig": [{"ring_hash_experimental": {"minRingSize": -0}}]}"#,
        r#"{"outlierDetection": {"interval": "99999999999999999999999999.999999999s"}}"#,
        r#"{"outlierDetection": {"interval": "NaNs"}}"#,
        r#"{"outlierDetection": {"interval": "infs"}}"#,
        "{\"outlierDetection\": {\"interval\": \"\u{0}s\"}}",
    ] {
        let _ = parse(json);
    }
    // Duplicate keys: the last wins, as with Go's decoder.
    let config = parse(r#"{"loadBalancingConfig": [{"pick_first": {}}], "loadBalancingConfig": [{"round_robin": {}}]}"#)
        .unwrap();
    assert_eq!(config.policy(), Some(&Policy::round_robin()));
    // The largest durations are taken as they are.
    let od = parse(r#"{"outlierDetection": {"interval": "315576000000.999999999s", "baseEjectionTime": "315576000000s"}}"#)
        .unwrap()
        .outlier_detection()
        .unwrap();
    assert_eq!(
        od.ejection_time(u32::MAX),
        Duration::from_secs(315_576_000_000)
    );
    assert_eq!(parse("{}").unwrap(), ServiceConfig::default());
    assert_eq!(
        parse(r#"{"loadBalancingConfig": null, "outlierDetection": null}"#).unwrap(),
        ServiceConfig::default()
    );
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop_oneof![
            Just("10s".to_owned()),
            Just("-1s".to_owned()),
            Just("1024".to_owned()),
            Just("x-user-id".to_owned()),
            ".*",
        ]
        .prop_map(Value::String),
    ];
    let keys = prop_oneof![
        Just("loadBalancingConfig".to_owned()),
        Just("outlierDetection".to_owned()),
        Just("healthCheckConfig".to_owned()),
        Just("childPolicy".to_owned()),
        Just("successRateEjection".to_owned()),
        Just("failurePercentageEjection".to_owned()),
        Just("interval".to_owned()),
        Just("choiceCount".to_owned()),
        Just("minRingSize".to_owned()),
        Just("maxRingSize".to_owned()),
        Just("requestHashHeader".to_owned()),
        Just("shuffleAddressList".to_owned()),
        proptest::sample::select(policy::SUPPORTED.to_vec()).prop_map(str::to_owned),
        "[a-zA-Z_]{0,12}",
    ];
    leaf.prop_recursive(6, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6)
                .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in ".*") {
        let _ = ServiceConfig::from_json(&s);
    }

    #[test]
    fn arbitrary_json_never_panics(v in json_value()) {
        let _ = ServiceConfig::from_json(&v.to_string());
        // As the top-level object too.
        let wrapped = serde_json::json!({ "loadBalancingConfig": [v.clone()], "outlierDetection": v });
        let _ = ServiceConfig::from_json(&wrapped.to_string());
    }

    #[test]
    fn a_parsed_config_builds(v in json_value()) {
        if let Ok(config) = ServiceConfig::from_json(&v.to_string())
            && let Some(od) = config.outlier_detection()
        {
            prop_assert!(od.validate().is_ok());
        }
    }
}

fn method(entry: &str) -> Result<ServiceConfig, Error> {
    parse(&format!(r#"{{"methodConfig": [{entry}]}}"#))
}

const RETRY: &str = r#""retryPolicy": {"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE", 8]}"#;

#[test]
fn method_configs_map() {
    use tonic::Code;
    let config = parse(&format!(
        r#"{{"methodConfig": [
            {{"name": [{{"service": "a.S", "method": "M"}}, {{"service": "b.T"}}], "timeout": "1.5s",
              "waitForReady": true, "maxRequestMessageBytes": 1024, "maxResponseMessageBytes": "2048", {RETRY}}},
            {{"name": [{{}}], "hedgingPolicy": {{"maxAttempts": 9, "hedgingDelay": "0.005s",
              "nonFatalStatusCodes": ["unavailable"]}}}}
        ], "retryThrottling": {{"maxTokens": 10, "tokenRatio": 0.1}}}}"#
    ))
    .unwrap();
    let [first, second] = config.method_configs() else {
        panic!("two entries")
    };
    assert_eq!(first.names().len(), 2);
    assert_eq!(first.get_timeout(), Some(Duration::from_millis(1500)));
    assert_eq!(first.get_wait_for_ready(), Some(true));
    assert_eq!(first.get_max_request_message_bytes(), Some(1024));
    assert_eq!(first.get_max_response_message_bytes(), Some(2048));
    let retry = first.get_retry_policy().unwrap();
    assert_eq!(retry.max_attempts(), 3);
    assert_eq!(
        retry.retryable_status_codes(),
        [Code::ResourceExhausted, Code::Unavailable]
    );
    let hedge = second.get_hedging_policy().unwrap();
    assert_eq!(hedge.max_attempts(), 5, "capped at 5, as A6 says");
    assert_eq!(hedge.hedging_delay(), Duration::from_millis(5));
    assert_eq!(config.retry_throttling().unwrap().max_tokens(), 10);
}

#[test]
fn bad_method_configs_name_the_field() {
    let retry = |policy: &str| {
        err(&format!(
            r#"{{"methodConfig": [{{"name": [{{}}], "retryPolicy": {policy}}}]}}"#
        ))
    };
    let full = |replace: &str, with: &str| {
        let base = r#"{"maxAttempts": 3, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}"#;
        retry(&base.replace(replace, with))
    };
    let cases = [
        (
            full("3", "-1"),
            "methodConfig[0].retryPolicy.maxAttempts: expected an unsigned integer",
        ),
        (
            full("3", "1"),
            "methodConfig[0].retryPolicy.maxAttempts: must be 2 or more",
        ),
        (
            full("3", "99999999999"),
            "methodConfig[0].retryPolicy.maxAttempts: 99999999999 is out of range",
        ),
        (
            full("\"0.1s\"", "\"fast\""),
            "methodConfig[0].retryPolicy.initialBackoff: expected a duration",
        ),
        (
            full("\"1s\"", "\"-1s\""),
            "methodConfig[0].retryPolicy.maxBackoff: must not be negative",
        ),
        (
            full("\"0.1s\"", "\"0s\""),
            "methodConfig[0].retryPolicy.initialBackoff: must be above 0",
        ),
        (
            full("2,", "0,"),
            "methodConfig[0].retryPolicy.backoffMultiplier: must be above 0",
        ),
        (
            full("\"UNAVAILABLE\"", "\"UNAVAILBLE\""),
            r#"methodConfig[0].retryPolicy.retryableStatusCodes[0]: unknown status code "UNAVAILBLE""#,
        ),
        (
            full("\"UNAVAILABLE\"", "17"),
            "methodConfig[0].retryPolicy.retryableStatusCodes[0]: unknown status code 17",
        ),
        (
            full("\"UNAVAILABLE\"", "\"OK\""),
            "retryableStatusCodes[0]: OK is not a failure",
        ),
        (
            full("[\"UNAVAILABLE\"]", "[]"),
            "methodConfig[0].retryPolicy.retryableStatusCodes: must name at least one code",
        ),
        (
            full(", \"maxBackoff\": \"1s\"", ""),
            "methodConfig[0].retryPolicy.maxBackoff: required",
        ),
        (
            err(&format!(
                r#"{{"methodConfig": [{{"name": [{{}}], {RETRY}, "hedgingPolicy": {{"maxAttempts": 2}}}}]}}"#
            )),
            "methodConfig[0]: has both a retryPolicy and a hedgingPolicy",
        ),
        (
            err(
                r#"{"methodConfig": [{"name": [{}], "hedgingPolicy": {"maxAttempts": 2, "hedgingDelay": "5ms"}}]}"#,
            ),
            "methodConfig[0].hedgingPolicy.hedgingDelay: expected a duration",
        ),
        (
            err(r#"{"methodConfig": [{"name": [{}], "hedgingPolicy": {"maxAttempts": 0}}]}"#),
            "methodConfig[0].hedgingPolicy.maxAttempts: must be 2 or more",
        ),
        (
            err(r#"{"methodConfig": [{"name": [{"method": "M"}]}]}"#),
            r#"methodConfig[0].name[0]: method "M" needs its service"#,
        ),
        (
            err(
                r#"{"methodConfig": [{"name": [{"service": "a"}]}, {"name": [{"service": "a"}]}]}"#,
            ),
            "methodConfig[1].name",
        ),
        (
            err(r#"{"methodConfig": [{"timeout": "1s"}]}"#),
            "methodConfig[0]: names no method",
        ),
        (
            err(r#"{"retryThrottling": {"maxTokens": 0, "tokenRatio": 1}}"#),
            "retryThrottling.maxTokens: must be within 1 ..= 1000",
        ),
        (
            err(r#"{"retryThrottling": {"maxTokens": 10, "tokenRatio": -1}}"#),
            "retryThrottling.tokenRatio: expected a finite number >= 0",
        ),
        (
            err(r#"{"retryThrottling": {"maxTokens": 10}}"#),
            "retryThrottling.tokenRatio: required",
        ),
    ];
    for (message, expected) in cases {
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
    }
    assert!(method(r#"{"name": [{"service": "a"}]}"#).is_ok());
}

#[test]
fn the_builder_refuses_bad_method_configs() {
    use crate::method_config::{HedgingPolicy, MethodConfig, MethodName, RetryPolicy};
    let build = |config: MethodConfig| {
        crate::Balancer::builder()
            .method_config(config)
            .validate_for_any_connector()
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let both = MethodConfig::new([MethodName::any()])
        .retry_policy(RetryPolicy::new(2, [tonic::Code::Unavailable]))
        .hedging_policy(HedgingPolicy::new(2, Duration::ZERO));
    assert!(build(both).contains("methodConfig[0]: has both"));
    let once = MethodConfig::new([MethodName::any()])
        .retry_policy(RetryPolicy::new(1, [tonic::Code::Unavailable]));
    assert!(build(once).contains("methodConfig[0].retryPolicy: maxAttempts must be 2 or more"));
    let none = MethodConfig::new([MethodName::any()]).retry_policy(RetryPolicy::new(3, []));
    assert!(build(none).contains("retryableStatusCodes must name at least one code"));
}
