package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"seckill/internal/testenv"
)

// partitionsLine is the consumer's log line at each rebalance.
var partitionsLine = regexp.MustCompile(`msg="kafka partitions assigned" topic=\S+ partitions="?\[([0-9 ]*)\]`)

// assigned returns the partitions p's consumer was last given, and whether
// it said so at all.
func (p *process) assigned() ([]int32, bool) {
	m := partitionsLine.FindAllStringSubmatch(p.out.String(), -1)
	if len(m) == 0 {
		return nil, false
	}
	var ps []int32
	for _, f := range strings.Fields(m[len(m)-1][1]) {
		n, _ := strconv.Atoi(f)
		ps = append(ps, int32(n))
	}
	return ps, true
}

// shareOut waits until the live processes' last assignments split the
// topic's partitions between them, each partition to exactly one.
func shareOut(t *testing.T, live []*process, partitions int) {
	t.Helper()
	eventually(t, 60*time.Second, "partitions shared out among the instances", func() bool {
		seen := map[int32]int{}
		for _, p := range live {
			ps, ok := p.assigned()
			if !ok {
				return false
			}
			for _, n := range ps {
				seen[n]++
			}
		}
		for n := range int32(partitions) {
			if seen[n] != 1 {
				return false
			}
		}
		return len(seen) == partitions
	})
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestThreeInstancesOnACluster runs three server processes on one Redis
// Cluster of three masters and three replicas, one seckill broker and one
// MySQL database, and spreads a storm over them. The instance consuming
// the activity's partition is killed with SIGKILL once 100 tokens are
// answered: the others go on selling, the dead one's claims come back
// after the lease, its partition moves to a survivor at the rebalance and
// the events it had not committed are read again there, nothing lost or
// counted twice, and the activity's periodic work, if the victim held it,
// is taken over by one survivor. The sale ends with exactly the stock issued and recorded,
// no slot twice, no user over the limit, and a history the checker
// accepts.
func TestThreeInstancesOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary on a Redis Cluster")
	}
	const stockN, demand, partitions = 300, 3000, 6
	cluster := testenv.ClusterWithReplicas(t)
	bin := buildServer(t)
	b := startBrokerProcess(t, bin, t.TempDir())
	cfg := testConfig(t)
	cfg.KafkaTopic = "seckill.three"
	ps := make([]*process, 3)
	for i := range ps {
		addr := freeAddr(t)
		ps[i] = &process{t: t, bin: bin, url: "http://" + addr, env: []string{
			"SECKILL_HTTP_ADDR=" + addr,
			"SECKILL_REDIS_ADDR=" + strings.Join(cluster.Addrs(), ","),
			"SECKILL_REDIS_PREFIX=" + cfg.RedisPrefix,
			"SECKILL_MYSQL_DSN=" + cfg.MySQLDSN,
			"SECKILL_KAFKA_BROKERS=" + b.addr,
			"SECKILL_KAFKA_TOPIC=" + cfg.KafkaTopic,
			"SECKILL_KAFKA_PARTITIONS=" + strconv.Itoa(partitions),
			"SECKILL_ADMIN_TOKEN=" + cfg.AdminToken,
			"SECKILL_LEASE=2s",
			"SECKILL_JOB_INTERVAL=200ms",
			"SECKILL_LOG_LEVEL=info",
		}}
		ps[i].start()
	}
	t.Cleanup(func() {
		for i, p := range ps {
			p.kill()
			if t.Failed() {
				t.Logf("instance %d output:\n%s", i, p.out.String())
			}
		}
	})
	shareOut(t, ps, partitions)

	admin := &App{cfg: cfg, adminToken: cfg.AdminToken, ln: fakeListener(strings.TrimPrefix(ps[0].url, "http://"))}
	id := openActivity(t, admin, stockN, 1)
	part, err := sarama.NewHashPartitioner(cfg.KafkaTopic).Partition(
		&sarama.ProducerMessage{Key: sarama.StringEncoder(strconv.FormatInt(id, 10))}, partitions)
	if err != nil {
		t.Fatal(err)
	}
	victim := slices.IndexFunc(ps, func(p *process) bool {
		got, _ := p.assigned()
		return slices.Contains(got, part)
	})
	survivors := slices.Delete(slices.Clone(ps), victim, victim+1)
	t.Logf("activity %d's events go to partition %d, consumed by instance %d: it is the one killed", id, part, victim)
	admin.ln = fakeListener(strings.TrimPrefix(survivors[0].url, "http://"))
	h := recordHistory(t, survivors[0].url, id, stockN, 1)
	for _, p := range ps {
		if p != survivors[0] {
			histories.Store(p.url, h.rec)
			t.Cleanup(func() { histories.Delete(p.url) })
		}
	}

	// The storm: joins spread round-robin over the instances alive, 150 at
	// a time; the victim dies once 100 tokens have been answered.
	var answered atomic.Int64
	var dead atomic.Bool
	var once sync.Once
	kill := func() { once.Do(func() { ps[victim].kill(); dead.Store(true) }) }
	answers := make([]joinAnswer, demand)
	byInstance := make([]atomic.Int64, len(ps))
	sem := make(chan struct{}, 150)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range demand {
		n := i % len(ps)
		if dead.Load() && n == victim {
			n = (n + 1) % len(ps)
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a := joinHTTP(ps[n].url, id, fmt.Sprintf("three%d", i))
			answers[i] = a
			if a.status == http.StatusOK {
				byInstance[n].Add(1)
				if answered.Add(1) == 100 {
					kill()
				}
			}
		}()
	}
	wg.Wait()
	kill() // in case the storm ended first
	took := time.Since(start)
	all := tokens(t, answers)
	t.Logf("storm: %d joins in %v (%.0f/s) over 3 instances, %d tokens (by instance %d, %d, %d)",
		demand, took.Round(time.Millisecond), float64(demand)/took.Seconds(), len(all),
		byInstance[0].Load(), byInstance[1].Load(), byInstance[2].Load())

	// The victim's partition moves to a survivor.
	shareOut(t, survivors, partitions)
	sellOut(t, survivors[0].url, admin, id, stockN, all)
	s := converged(t, admin, id, stockN, stockN)
	t.Logf("%d tokens answered with 200; %d issued while their answer died with the victim; recorded %d",
		len(all), stockN-len(all), s.Recorded)
	checkTokens(t, survivors[1].url, all)
	h.check(t)

	// The activity's periodic work is held by one survivor.
	eventually(t, 10*time.Second, "the activity's work held by one survivor", func() bool {
		held := 0.0
		for _, p := range survivors {
			held += metricValue(scrape(t, p.url), "seckill_job_activities_held")
		}
		return held == 1
	})

	// Each partition is consumed, and its lag reported, by one survivor.
	total, lagSeries := 0.0, 0
	for _, p := range survivors {
		body := scrape(t, p.url)
		total += metricValue(body, "seckill_kafka_partitions_assigned")
		if strings.Contains(body, fmt.Sprintf("seckill_kafka_consumer_lag{partition=%q}", strconv.Itoa(int(part)))) {
			lagSeries++
		}
	}
	if total != partitions || lagSeries != 1 {
		t.Errorf("survivors: %v partitions assigned in all, want %d; lag of partition %d reported by %d, want 1",
			total, partitions, part, lagSeries)
	}
}
