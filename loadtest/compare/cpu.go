package main

import (
	"bufio"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc: 100 ticks a second on every
// Linux ABI (USER_HZ, not the kernel's HZ).
const userHZ = 100

// procCPU returns the CPU time, user and system, that process pid has used
// so far: the utime and stime of /proc/PID/stat, the same accounting as
// getrusage(2) for the process, all its threads included. ok is false where
// there is no /proc (not Linux) or the process is gone.
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name, in parentheses, may hold spaces: the fields are
	// counted after its closing parenthesis, from the state (field 3).
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return ticks(utime + stime), true
}

// machineCPU returns the CPU time every core of the machine spent busy so
// far (the first line of /proc/stat less idle, iowait and steal, the time a
// hypervisor gave to other machines): the load generator, the servers,
// Redis, MariaDB and anything else running.
func machineCPU() (time.Duration, bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, false
	}
	defer func() { _ = f.Close() }() // read only
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, false
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, false
	}
	// user nice system idle iowait irq softirq steal (guest time is
	// counted in user already)
	var busy int64
	for i, v := range fields[1:9] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		if i != 3 && i != 4 && i != 7 {
			busy += n
		}
	}
	return ticks(busy), true
}

// findProcess returns the pid of the one process on this machine whose
// command is one of names; ok is false when there is none, or several.
func findProcess(names ...string) (int, bool) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	found := 0
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + d.Name() + "/comm")
		if err != nil {
			continue
		}
		if slices.Contains(names, strings.TrimSpace(string(comm))) {
			if found != 0 {
				return 0, false
			}
			found = pid
		}
	}
	return found, found != 0
}

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / userHZ }

// cpuUse is the CPU time the processes of a run used during it, in seconds;
// nil where it could not be read.
type cpuUse struct {
	// Server is the process that answered the requests: the baseline
	// server, or the service.
	Server *float64 `json:"serverSec,omitempty"`
	// Broker is seckill broker, the Kafka broker of the service's run.
	Broker *float64 `json:"brokerSec,omitempty"`
	// Redis is INFO cpu used_cpu_user + used_cpu_sys: server-wide, other
	// clients of a shared Redis included.
	Redis *float64 `json:"redisSec,omitempty"`
	// MySQL is the MariaDB or MySQL server's process, when it runs on this
	// machine.
	MySQL *float64 `json:"mysqlSec,omitempty"`
	// Machine is every core's busy time: the load generator and everything
	// else on the machine too.
	Machine *float64 `json:"machineSec,omitempty"`
}

// cpuSnap is a reading of the CPU times cpuUse is made of.
type cpuSnap struct {
	server, broker, mysql, machine time.Duration
	okServer, okBroker, okMySQL    bool
	okMachine                      bool
	redis                          float64 // seconds; < 0 when unknown
}

func snapCPU(server, broker *child, redisSec float64) cpuSnap {
	var s cpuSnap
	if server != nil {
		s.server, s.okServer = procCPU(server.cmd.Process.Pid)
	}
	if broker != nil {
		s.broker, s.okBroker = procCPU(broker.cmd.Process.Pid)
	}
	if pid, ok := findProcess("mariadbd", "mysqld"); ok {
		s.mysql, s.okMySQL = procCPU(pid)
	}
	s.machine, s.okMachine = machineCPU()
	s.redis = redisSec
	return s
}

func (after cpuSnap) since(before cpuSnap) cpuUse {
	var u cpuUse
	sec := func(ok bool, d time.Duration) *float64 {
		if !ok {
			return nil
		}
		v := d.Seconds()
		return &v
	}
	u.Server = sec(before.okServer && after.okServer, after.server-before.server)
	u.Broker = sec(before.okBroker && after.okBroker, after.broker-before.broker)
	u.MySQL = sec(before.okMySQL && after.okMySQL, after.mysql-before.mysql)
	u.Machine = sec(before.okMachine && after.okMachine, after.machine-before.machine)
	if before.redis >= 0 && after.redis >= 0 {
		v := after.redis - before.redis
		u.Redis = &v
	}
	return u
}

// perOp returns microseconds of sec per one of n, and whether there is a
// figure.
func perOp(sec *float64, n int64) (float64, bool) {
	if sec == nil || n <= 0 {
		return 0, false
	}
	return *sec * 1e6 / float64(n), true
}
