package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

// env returns a getenv over m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// field is one setting of a loaded Config, named by its variable.
type field struct {
	env       string
	got, want any
}

func checkFields(t *testing.T, fields []field) {
	t.Helper()
	for _, f := range fields {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s: got %#v, want %#v", f.env, f.got, f.want)
		}
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatalf("LoadConfig with no environment: %v", err)
	}
	// The defaults of API.md, then those of the settings it does not list.
	checkFields(t, []field{
		{"SECKILL_HTTP_ADDR", c.HTTPAddr, ":8080"},
		{"SECKILL_REDIS_ADDR", c.RedisAddrs, []string{"127.0.0.1:6379"}},
		{"SECKILL_REDIS_DB", c.RedisDB, 0},
		{"SECKILL_MYSQL_DSN", c.MySQLDSN, "root@tcp(127.0.0.1:3306)/seckill?parseTime=true"},
		{"SECKILL_KAFKA_BROKERS", len(c.KafkaBrokers), 0},
		{"SECKILL_KAFKA_TOPIC", c.KafkaTopic, "seckill.partake"},
		{"SECKILL_ADMIN_TOKEN", c.AdminToken, ""},
		{"SECKILL_TOKENS_TOPIC", c.TokensTopic, "seckill.tokens"},
		{"SECKILL_REDIS_PREFIX", c.RedisPrefix, "seckill"},
		{"SECKILL_LEASE", c.Lease, 15 * time.Second},
		{"SECKILL_LOG_LEVEL", c.LogLevel, "info"},
		{"SECKILL_WALKTHROUGH", c.Walkthrough, false},
		{"SECKILL_KAFKA_REPLICATION_FACTOR", c.KafkaReplicationFactor, 0},
		{"SECKILL_KAFKA_MIN_INSYNC_REPLICAS", c.KafkaMinInsyncReplicas, 0},
		{"SECKILL_REDIS_ALLOW_EVICTION", c.RedisAllowEviction, false},
		{"SECKILL_KAFKA_PARTITIONS", c.KafkaPartitions, 6},
		{"SECKILL_BROKER_ADDR", c.BrokerAddr, "127.0.0.1:9092"},
		{"SECKILL_MAX_JOINS_IN_FLIGHT", c.MaxJoinsInFlight, 512},
		{"SECKILL_JOIN_LIMIT", c.JoinLimit, "adaptive"},
		{"SECKILL_JOIN_QUEUE_TIMEOUT", c.JoinQueueTimeout, time.Duration(0)},
		{"SECKILL_JOIN_LATENCY_TARGET", c.JoinLatencyTarget, 20 * time.Millisecond},
		{"SECKILL_USER_AUTH", c.UserAuth, "body"},
		{"SECKILL_USER_HEADER", c.UserHeader, "X-User-ID"},
		{"SECKILL_JWT_KEYS", c.JWTKeys, ""},
		{"SECKILL_JWT_ISSUER", c.JWTIssuer, ""},
		{"SECKILL_JWT_AUDIENCE", c.JWTAudience, ""},
	})
}

func TestLoadConfigUserAuth(t *testing.T) {
	c, err := LoadConfig([]string{"-jwt-audience", "seckill"}, env(map[string]string{
		"SECKILL_USER_AUTH": "jwt", "SECKILL_JWT_KEYS": "/etc/seckill/jwks.json", "SECKILL_JWT_ISSUER": "https://login.example.com",
	}), io.Discard)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	checkFields(t, []field{
		{"SECKILL_USER_AUTH", c.UserAuth, "jwt"},
		{"SECKILL_JWT_KEYS", c.JWTKeys, "/etc/seckill/jwks.json"},
		{"SECKILL_JWT_ISSUER", c.JWTIssuer, "https://login.example.com"},
		{"SECKILL_JWT_AUDIENCE", c.JWTAudience, "seckill"},
	})
	c, err = LoadConfig([]string{"-user-auth", "header", "-user-header", "X-Authenticated-User"}, env(nil), io.Discard)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	checkFields(t, []field{{"SECKILL_USER_AUTH", c.UserAuth, "header"}, {"SECKILL_USER_HEADER", c.UserHeader, "X-Authenticated-User"}})
}

func TestLoadConfigDurabilitySettings(t *testing.T) {
	c, err := LoadConfig([]string{"-kafka-min-insync-replicas", "2", "-redis-allow-eviction"},
		env(map[string]string{"SECKILL_KAFKA_REPLICATION_FACTOR": "3"}), io.Discard)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	checkFields(t, []field{
		{"SECKILL_KAFKA_REPLICATION_FACTOR", c.KafkaReplicationFactor, 3},
		{"SECKILL_KAFKA_MIN_INSYNC_REPLICAS", c.KafkaMinInsyncReplicas, 2},
		{"SECKILL_REDIS_ALLOW_EVICTION", c.RedisAllowEviction, true},
	})
	// A min.insync.replicas alone is checked against the cluster at start.
	if _, err := LoadConfig(nil, env(map[string]string{"SECKILL_KAFKA_MIN_INSYNC_REPLICAS": "3"}), io.Discard); err != nil {
		t.Errorf("min.insync.replicas 3 with the automatic replication factor: %v", err)
	}
}

func TestLoadConfigReadsEnvironment(t *testing.T) {
	vars := map[string]string{
		"SECKILL_HTTP_ADDR":     "127.0.0.1:9090",
		"SECKILL_REDIS_ADDR":    "10.0.0.1:7000, 10.0.0.2:7000,,10.0.0.3:7000",
		"SECKILL_REDIS_DB":      "3",
		"SECKILL_REDIS_PREFIX":  "sk-prod",
		"SECKILL_MYSQL_DSN":     "app:pw@tcp(db:3306)/sales?parseTime=true",
		"SECKILL_KAFKA_BROKERS": "k1:9092,k2:9092",
		"SECKILL_KAFKA_TOPIC":   "partake.v2",
		"SECKILL_TOKENS_TOPIC":  "winners.v2",
		"SECKILL_ADMIN_TOKEN":   "s3cret",
		"SECKILL_LEASE":         "30s",
		"SECKILL_LOG_LEVEL":     "debug",
		"SECKILL_WALKTHROUGH":   "true",
	}
	c, err := LoadConfig(nil, env(vars), io.Discard)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	checkFields(t, []field{
		{"SECKILL_HTTP_ADDR", c.HTTPAddr, "127.0.0.1:9090"},
		{"SECKILL_REDIS_ADDR", c.RedisAddrs, []string{"10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"}},
		{"SECKILL_REDIS_DB", c.RedisDB, 3},
		{"SECKILL_MYSQL_DSN", c.MySQLDSN, "app:pw@tcp(db:3306)/sales?parseTime=true"},
		{"SECKILL_KAFKA_BROKERS", c.KafkaBrokers, []string{"k1:9092", "k2:9092"}},
		{"SECKILL_KAFKA_TOPIC", c.KafkaTopic, "partake.v2"},
		{"SECKILL_TOKENS_TOPIC", c.TokensTopic, "winners.v2"},
		{"SECKILL_ADMIN_TOKEN", c.AdminToken, "s3cret"},
		{"SECKILL_REDIS_PREFIX", c.RedisPrefix, "sk-prod"},
		{"SECKILL_LEASE", c.Lease, 30 * time.Second},
		{"SECKILL_LOG_LEVEL", c.LogLevel, "debug"},
		{"SECKILL_WALKTHROUGH", c.Walkthrough, true},
	})
}

// Every setting's own default must pass its own check, from the environment
// and as a flag; the empty value of a variable means "unset".
func TestLoadConfigEverySettingAcceptsItsDefault(t *testing.T) {
	for _, v := range configVars {
		t.Run(v.env, func(t *testing.T) {
			if v.def != "" {
				if _, err := LoadConfig(nil, env(map[string]string{v.env: v.def}), io.Discard); err != nil {
					t.Errorf("%s=%q: %v", v.env, v.def, err)
				}
				if _, err := LoadConfig([]string{"-" + v.flag + "=" + v.def}, env(nil), io.Discard); err != nil {
					t.Errorf("-%s=%q: %v", v.flag, v.def, err)
				}
			}
			if _, err := LoadConfig(nil, env(map[string]string{v.env: ""}), io.Discard); err != nil {
				t.Errorf("%s set empty: %v, want the default", v.env, err)
			}
		})
	}
}

func TestLoadConfigFlagsOverrideEnvironment(t *testing.T) {
	vars := map[string]string{
		"SECKILL_HTTP_ADDR":   ":1111",
		"SECKILL_REDIS_ADDR":  "env-redis:6379",
		"SECKILL_REDIS_DB":    "1",
		"SECKILL_ADMIN_TOKEN": "from-env",
		"SECKILL_LEASE":       "20s",
		"SECKILL_KAFKA_TOPIC": "env.topic",
	}
	args := []string{"-http-addr", ":2222", "-redis-addr=flag-redis:6379", "-redis-db", "2",
		"-admin-token", "from-flag", "-lease", "5s"}
	got, err := LoadConfig(args, env(vars), io.Discard)
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	if got.HTTPAddr != ":2222" || !reflect.DeepEqual(got.RedisAddrs, []string{"flag-redis:6379"}) ||
		got.RedisDB != 2 || got.AdminToken != "from-flag" || got.Lease != 5*time.Second {
		t.Errorf("flags did not override the environment: %+v", got)
	}
	if got.KafkaTopic != "env.topic" {
		t.Errorf("KafkaTopic %q, want the environment's env.topic where no flag is given", got.KafkaTopic)
	}
}

func TestLoadConfigRejectsBadValues(t *testing.T) {
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want []string // each must appear in the error
	}{
		{"RedisDBNotANumber", map[string]string{"SECKILL_REDIS_DB": "abc"}, nil, []string{"SECKILL_REDIS_DB", "abc"}},
		{"RedisDBOutOfRange", map[string]string{"SECKILL_REDIS_DB": "16"}, nil, []string{"SECKILL_REDIS_DB"}},
		{"RedisDBFlagNegative", nil, []string{"-redis-db", "-1"}, []string{"redis-db"}},
		{"RedisAddrOnlyCommas", map[string]string{"SECKILL_REDIS_ADDR": " , ,"}, nil, []string{"SECKILL_REDIS_ADDR"}},
		{"RedisPrefixWithBraces", map[string]string{"SECKILL_REDIS_PREFIX": "a{b}"}, nil, []string{"SECKILL_REDIS_PREFIX"}},
		{"LeaseTooShort", map[string]string{"SECKILL_LEASE": "1ns"}, nil, []string{"SECKILL_LEASE"}},
		{"LeaseNotADuration", map[string]string{"SECKILL_LEASE": "15"}, nil, []string{"SECKILL_LEASE"}},
		{"LeaseTooLong", map[string]string{"SECKILL_LEASE": "2h"}, nil, []string{"SECKILL_LEASE"}},
		{"LogLevelUnknown", map[string]string{"SECKILL_LOG_LEVEL": "loud"}, nil, []string{"SECKILL_LOG_LEVEL"}},
		{"RatePerUserNaN", map[string]string{"SECKILL_JOIN_RATE_PER_USER": "NaN"}, nil, []string{"SECKILL_JOIN_RATE_PER_USER"}},
		{"RetentionTooShort", map[string]string{"SECKILL_RETENTION": "10ms"}, nil, []string{"SECKILL_RETENTION"}},
		{"WalkthroughNotABool", map[string]string{"SECKILL_WALKTHROUGH": "maybe"}, nil, []string{"SECKILL_WALKTHROUGH"}},
		{"ReplicationFactorNegative", map[string]string{"SECKILL_KAFKA_REPLICATION_FACTOR": "-1"}, nil, []string{"SECKILL_KAFKA_REPLICATION_FACTOR", "0 = min(3, live brokers)"}},
		{"ReplicationFactorTooLarge", nil, []string{"-kafka-replication-factor", "40000"}, []string{"kafka-replication-factor"}},
		{"MinInsyncReplicasNotANumber", map[string]string{"SECKILL_KAFKA_MIN_INSYNC_REPLICAS": "two"}, nil, []string{"SECKILL_KAFKA_MIN_INSYNC_REPLICAS"}},
		{"MinInsyncReplicasOverReplicationFactor", map[string]string{"SECKILL_KAFKA_REPLICATION_FACTOR": "2", "SECKILL_KAFKA_MIN_INSYNC_REPLICAS": "3"}, nil,
			[]string{"SECKILL_KAFKA_MIN_INSYNC_REPLICAS", "SECKILL_KAFKA_REPLICATION_FACTOR (2)"}},
		{"AllowEvictionNotABool", map[string]string{"SECKILL_REDIS_ALLOW_EVICTION": "yes please"}, nil, []string{"SECKILL_REDIS_ALLOW_EVICTION"}},
		{"PartitionsZero", map[string]string{"SECKILL_KAFKA_PARTITIONS": "0"}, nil, []string{"SECKILL_KAFKA_PARTITIONS", "from 1 to 1000"}},
		{"PartitionsNotANumber", nil, []string{"-kafka-partitions", "six"}, []string{"kafka-partitions"}},
		{"BrokerAddrNoPort", map[string]string{"SECKILL_BROKER_ADDR": "localhost"}, nil, []string{"SECKILL_BROKER_ADDR", "HOST:PORT"}},
		{"BrokerAddrBadPort", map[string]string{"SECKILL_BROKER_ADDR": "127.0.0.1:99999"}, nil, []string{"SECKILL_BROKER_ADDR"}},
		{"KafkaTopicEmptyFlag", nil, []string{"-kafka-topic", ""}, []string{"kafka-topic"}},
		{"TokensTopicEmptyFlag", nil, []string{"-tokens-topic", ""}, []string{"tokens-topic"}},
		{"TokensTopicIsTheEventTopic", map[string]string{"SECKILL_TOKENS_TOPIC": "seckill.partake"}, nil,
			[]string{"SECKILL_TOKENS_TOPIC", "SECKILL_KAFKA_TOPIC (seckill.partake)"}},
		{"TokensTopicIsTheDeadLetterTopic", map[string]string{"SECKILL_KAFKA_TOPIC": "p"}, []string{"-tokens-topic", "p.dead"},
			[]string{"tokens-topic", "dead-letter"}},
		{"MaxJoinsInFlightZero", map[string]string{"SECKILL_MAX_JOINS_IN_FLIGHT": "0"}, nil, []string{"SECKILL_MAX_JOINS_IN_FLIGHT", "from 1 to 100000"}},
		{"JoinLimitUnknown", nil, []string{"-join-limit", "vegas"}, []string{"join-limit", "adaptive or fixed"}},
		{"JoinLatencyTargetZero", map[string]string{"SECKILL_JOIN_LATENCY_TARGET": "0s"}, nil, []string{"SECKILL_JOIN_LATENCY_TARGET"}},
		{"JoinQueueTimeoutTooLong", map[string]string{"SECKILL_JOIN_QUEUE_TIMEOUT": "2s"}, nil, []string{"SECKILL_JOIN_QUEUE_TIMEOUT"}},
		{"UserAuthUnknown", map[string]string{"SECKILL_USER_AUTH": "oauth"}, nil, []string{"SECKILL_USER_AUTH", "body, header or jwt"}},
		{"UserHeaderWithSpace", nil, []string{"-user-header", "X User"}, []string{"user-header"}},
		{"UserHeaderAuthorization", map[string]string{"SECKILL_USER_HEADER": "authorization"}, nil, []string{"SECKILL_USER_HEADER", "not Authorization"}},
		{"UserHeaderHost", map[string]string{"SECKILL_USER_HEADER": "Host"}, nil, []string{"SECKILL_USER_HEADER", "not Authorization, Host"}},
		{"UserHeaderIdempotencyKey", map[string]string{"SECKILL_USER_HEADER": "idempotency-key"}, nil, []string{"SECKILL_USER_HEADER"}},
		{"UserHeaderForwarded", map[string]string{"SECKILL_USER_HEADER": "X-Forwarded-For"}, nil, []string{"SECKILL_USER_HEADER"}},
		{"UserHeaderContent", map[string]string{"SECKILL_USER_HEADER": "Content-Type"}, nil, []string{"SECKILL_USER_HEADER"}},
		{"JWTWithoutKeys", nil, []string{"-user-auth", "jwt"}, []string{"SECKILL_USER_AUTH", "SECKILL_JWT_KEYS"}},
		{"JWTKeysInBodyMode", map[string]string{"SECKILL_JWT_KEYS": "/etc/jwks.json"}, nil, []string{"SECKILL_JWT_KEYS", "only used with SECKILL_USER_AUTH=jwt", `"body"`}},
		{"JWTIssuerInHeaderMode", map[string]string{"SECKILL_USER_AUTH": "header"}, []string{"-jwt-issuer", "https://x"}, []string{"SECKILL_JWT_ISSUER", `"header"`}},
		{"JWTAudienceInBodyMode", map[string]string{"SECKILL_JWT_AUDIENCE": "seckill"}, nil, []string{"SECKILL_JWT_AUDIENCE"}},
		{"UnknownFlag", nil, []string{"-no-such-flag"}, []string{"no-such-flag"}},
		{"ExtraArgument", nil, []string{"-http-addr", ":1", "serve"}, []string{"serve"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(tt.args, env(tt.vars), io.Discard)
			if err == nil {
				t.Fatal("LoadConfig accepted it")
			}
			if errors.Is(err, flag.ErrHelp) {
				t.Fatalf("LoadConfig = %v, want an error, not help", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
		})
	}
}

func TestLoadConfigHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		t.Run(arg, func(t *testing.T) {
			var out bytes.Buffer
			_, err := LoadConfig([]string{arg}, env(nil), &out)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("LoadConfig(%s) = %v, want flag.ErrHelp", arg, err)
			}
			for _, v := range configVars {
				if !strings.Contains(out.String(), v.env) || !strings.Contains(out.String(), "-"+v.flag) {
					t.Errorf("usage does not list %s / -%s:\n%s", v.env, v.flag, out.String())
				}
			}
		})
	}
}

// A true-or-false setting is true when its flag is given bare and takes the
// value after = over the environment's; it takes no separate value.
func TestLoadConfigBooleanFlags(t *testing.T) {
	tests := []struct {
		name                       string
		vars                       map[string]string
		args                       []string
		walkthrough, allowEviction bool
	}{
		{"Bare", nil, []string{"-walkthrough", "--redis-allow-eviction"}, true, true},
		{"FalseOverEnvironment", map[string]string{"SECKILL_WALKTHROUGH": "true", "SECKILL_REDIS_ALLOW_EVICTION": "1"},
			[]string{"-walkthrough=false", "--redis-allow-eviction=0"}, false, false},
		{"TrueOverEnvironment", map[string]string{"SECKILL_WALKTHROUGH": "false"}, []string{"-walkthrough=true"}, true, false},
		{"BareBeforeAFlagWithAValue", nil, []string{"-redis-allow-eviction", "-redis-db", "3"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadConfig(tt.args, env(tt.vars), io.Discard)
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			checkFields(t, []field{
				{"SECKILL_WALKTHROUGH", c.Walkthrough, tt.walkthrough},
				{"SECKILL_REDIS_ALLOW_EVICTION", c.RedisAllowEviction, tt.allowEviction},
			})
		})
	}
	t.Run("SeparateValueIsAnArgument", func(t *testing.T) {
		_, err := LoadConfig([]string{"-walkthrough", "false"}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), `unexpected argument "false"`) {
			t.Errorf("LoadConfig(-walkthrough false) = %v, want the unexpected argument \"false\"", err)
		}
	})
	t.Run("NotABool", func(t *testing.T) {
		_, err := LoadConfig([]string{"-walkthrough=maybe"}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "SECKILL_WALKTHROUGH (-walkthrough)") {
			t.Errorf("LoadConfig(-walkthrough=maybe) = %v, want an error naming SECKILL_WALKTHROUGH", err)
		}
	})
}

// Every other setting takes the next argument as its value, whatever its
// default looks like: given its default so, it loads the default
// configuration.
func TestLoadConfigFlagTakesNextArgument(t *testing.T) {
	defaults, err := LoadConfig(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range configVars {
		if v.isBool {
			continue
		}
		t.Run(v.env, func(t *testing.T) {
			c, err := LoadConfig([]string{"-" + v.flag, v.def}, env(nil), io.Discard)
			if err != nil {
				t.Fatalf("-%s %q: %v", v.flag, v.def, err)
			}
			if !reflect.DeepEqual(c, defaults) {
				t.Errorf("-%s %q loaded %+v, want the defaults %+v", v.flag, v.def, c, defaults)
			}
		})
	}
}
