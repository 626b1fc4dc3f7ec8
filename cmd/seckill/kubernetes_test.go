package main

// The Kubernetes base in deploy/kubernetes, checked against the service it
// runs. No cluster runs here: the manifests are decoded strictly into the
// API's own types, as the API server does with fieldValidation=Strict (an
// unknown or repeated field, or a kind outside the scheme, fails), rendered
// with kustomize as `kubectl apply -k` does, and held to what the service
// needs: its probes on the port it listens on, a grace period longer than
// its drain, only the variables it reads, and a locked-down container.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kubeDir is the base, from this package's directory.
const kubeDir = "../../deploy/kubernetes"

// The paths of the probes: the routes of activity/httpapi.
const (
	livenessPath  = "/healthz"
	readinessPath = "/readyz"
)

// distrolessUsers are the uids of the users the distroless images name.
var distrolessUsers = map[string]int64{"nonroot": 65532}

// secretVars must come from the Secret: the admin token, and the DSN with
// MySQL's password in it.
var secretVars = []string{"SECKILL_ADMIN_TOKEN", "SECKILL_MYSQL_DSN"}

func TestKubernetesBase(t *testing.T) {
	files, err := readKubeFiles(kubeDir)
	if err != nil {
		t.Fatal(err)
	}
	img := readBuiltImage(t)
	t.Run("Files", func(t *testing.T) {
		b, err := loadKubeBase(files)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range b.problems(img) {
			t.Error(p)
		}
	})
	t.Run("Rendered", func(t *testing.T) {
		b, err := renderKubeBase(files, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range b.problems(img) {
			t.Error(p)
		}
		want := img.repo + ":" + b.imageEntry(img.repo).NewTag
		if got := b.container().Image; got != want {
			t.Errorf("rendered image %q, want %q: the kustomization's images entry", got, want)
		}
	})
	t.Run("OverlaySetsTheImage", func(t *testing.T) {
		overlay := "images:\n  - name: " + img.repo + "\n    newName: mirror/seckill\n    newTag: v9.9.9\n"
		b, err := renderKubeBase(files, overlay)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := b.container().Image, "mirror/seckill:v9.9.9"; got != want {
			t.Errorf("an overlay's images entry for %q gives the image %q, want %q", img.repo, got, want)
		}
	})
}

// TestKubernetesBaseRefuses holds the checks of TestKubernetesBase to
// failing: each case spoils one file of the base and names what the failure
// must say.
func TestKubernetesBaseRefuses(t *testing.T) {
	files, err := readKubeFiles(kubeDir)
	if err != nil {
		t.Fatal(err)
	}
	img := readBuiltImage(t)
	cases := []struct {
		name, file, old, new, want string
	}{
		{"UnknownField", "deployment.yaml", "readOnlyRootFilesystem:", "readOnlyRootFileSystem:", `unknown field "spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem"`},
		{"FieldTwice", "service.yaml", "  type: ClusterIP\n", "  type: ClusterIP\n  type: NodePort\n", `"type" already set`},
		{"UnknownKind", "poddisruptionbudget.yaml", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgets", `no kind "PodDisruptionBudgets"`},
		{"OtherKind", "service.yaml", "apiVersion: v1\nkind: Service\n", "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: seckill\n---\napiVersion: v1\nkind: Service\n", "a ServiceAccount: this test has no check for it"},
		{"ReadinessPath", "deployment.yaml", "path: " + readinessPath, "path: /ready", `readiness probe: path "/ready"`},
		{"LivenessPort", "deployment.yaml", "path: /healthz\n              port: http\n            periodSeconds: 10",
			"path: /healthz\n              port: 9090\n            periodSeconds: 10", "liveness probe: port 9090"},
		{"FewerPartitionsThanPods", "configmap.yaml", `SECKILL_KAFKA_PARTITIONS: "12"`, `SECKILL_KAFKA_PARTITIONS: "6"`, "no less than the autoscaler's maxReplicas 12"},
		{"ListensElsewhere", "configmap.yaml", `SECKILL_HTTP_ADDR: ":8080"`, `SECKILL_HTTP_ADDR: ":9090"`, "no port 9090"},
		{"ServiceTargetsElsewhere", "service.yaml", "targetPort: http", "targetPort: 9090", "targetPort 9090"},
		{"GraceTooShort", "deployment.yaml", "terminationGracePeriodSeconds: 50", "terminationGracePeriodSeconds: 40", "terminationGracePeriodSeconds 40s"},
		{"PreStopExec", "deployment.yaml", "sleep:\n                seconds: 10", `exec: {command: [sleep, "10"]}`, "preStop is not a sleep action"},
		{"UnknownVariable", "configmap.yaml", "SECKILL_LOG_LEVEL:", "SECKILL_LOGLEVEL:", "ConfigMap seckill sets SECKILL_LOGLEVEL: the service reads no such variable"},
		{"UnknownSecretVariable", "secret.yaml", "SECKILL_ADMIN_TOKEN:", "SECKILL_ADMIN_TOKENS:", "Secret seckill sets SECKILL_ADMIN_TOKENS: the service reads no such variable"},
		{"UnknownContainerVariable", "deployment.yaml", "          envFrom:\n", "          env:\n            - {name: SECKILL_DEBUG, value: \"1\"}\n          envFrom:\n", "the container's env sets SECKILL_DEBUG: the service reads no such variable"},
		{"PrefixedEnvFrom", "deployment.yaml", "          envFrom:\n            - configMapRef:", "          envFrom:\n            - prefix: X_\n              configMapRef:", "prefix"},
		{"DSNInConfigMap", "configmap.yaml", "\ndata:\n", "\ndata:\n  SECKILL_MYSQL_DSN: \"seckill:pw@tcp(mysql:3306)/seckill\"\n", "SECKILL_MYSQL_DSN is set outside the Secret"},
		{"EmbeddedBroker", "configmap.yaml", `SECKILL_KAFKA_BROKERS: "kafka-0`, `SECKILL_KAFKA_BROKERS: "" # "kafka-0`, "SECKILL_KAFKA_BROKERS is empty"},
		{"Root", "deployment.yaml", "runAsUser: 65532", "runAsUser: 0", "runAsUser 0"},
		{"WritableRoot", "deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		{"Escalation", "deployment.yaml", "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation"},
		{"Capabilities", "deployment.yaml", `drop: ["ALL"]`, `drop: ["NET_RAW"]`, "capabilities: not drop ALL"},
		{"Seccomp", "deployment.yaml", "type: RuntimeDefault", "type: Unconfined", "seccomp"},
		{"NoLimits", "deployment.yaml", "            limits:\n              cpu: \"2\"\n              memory: 512Mi\n", "", "no memory limit"},
		{"OtherImage", "deployment.yaml", "image: seckill:", "image: shop:", `image "shop:latest"`},
		{"OtherImageEntry", "kustomization.yaml", "images:\n  - name: seckill\n", "images:\n  - name: shop\n", "no images entry"},
		{"FieldNotChecked", "poddisruptionbudget.yaml", "app.kubernetes.io/name: seckill\nspec:", "app.kubernetes.io/name: seckill\nspec:\n  unhealthyPodEvictionPolicy: AlwaysAllow", ""},
		{"PDBBlocksDrains", "poddisruptionbudget.yaml", "maxUnavailable: 1", "maxUnavailable: 0", "the PodDisruptionBudget lets 0 of 3 replicas stop"},
		{"HPABelowReplicas", "horizontalpodautoscaler.yaml", "minReplicas: 3", "minReplicas: 2", "minReplicas 2"},
		{"HPATargetsElsewhere", "horizontalpodautoscaler.yaml", "    name: seckill\n  minReplicas", "    name: shop\n  minReplicas", "scaleTargetRef"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spoilt := maps.Clone(files)
			if !bytes.Contains(spoilt[c.file], []byte(c.old)) {
				t.Fatalf("%s no longer holds %q: update the case", c.file, c.old)
			}
			spoilt[c.file] = bytes.Replace(spoilt[c.file], []byte(c.old), []byte(c.new), 1)
			var problems []error
			b, err := loadKubeBase(spoilt)
			if err != nil {
				problems = []error{err}
			} else {
				problems = b.problems(img)
			}
			if c.want == "" {
				// A change the checks must let through: a field they
				// do not look at.
				if len(problems) > 0 {
					t.Fatalf("refused: %v", errors.Join(problems...))
				}
				return
			}
			if len(problems) == 0 {
				t.Fatalf("%s with %q in place of %q: no problem found", c.file, c.new, c.old)
			}
			if all := errors.Join(problems...).Error(); !strings.Contains(all, c.want) {
				t.Errorf("problems do not mention %q:\n%s", c.want, all)
			}
		})
	}
}

// builtImage is what the repository says about the image it builds.
type builtImage struct {
	repo     string // the image's name without its tag, in docker-compose.yml and the Dockerfile
	httpAddr string // the Dockerfile's SECKILL_HTTP_ADDR
	uid      int64  // the Dockerfile's USER, as a uid
}

// readBuiltImage reads the image's name from docker-compose.yml's service
// built from the Dockerfile, and checks that the Dockerfile's own build
// command names it too.
func readBuiltImage(t *testing.T) builtImage {
	t.Helper()
	compose, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]struct {
			Build *struct {
				Context string `json:"context"`
			} `json:"build"`
			Image string `json:"image"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(compose, &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	var img builtImage
	for name, s := range c.Services {
		if s.Build != nil && s.Build.Context == "." {
			if img.repo != "" {
				t.Fatalf("docker-compose.yml: two services build the Dockerfile")
			}
			img.repo = imageRepo(s.Image)
			if img.repo == "" {
				t.Fatalf("docker-compose.yml: service %s builds the Dockerfile without naming the image", name)
			}
		}
	}
	if img.repo == "" {
		t.Fatal("docker-compose.yml: no service builds the Dockerfile (build context .)")
	}
	dockerfile, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`docker build .*-t (\S+) \.`).FindSubmatch(dockerfile)
	if m == nil || imageRepo(string(m[1])) != img.repo {
		t.Fatalf("the Dockerfile's docker build command does not tag the image %s, as docker-compose.yml does", img.repo)
	}
	if m := regexp.MustCompile(`(?m)^ENV SECKILL_HTTP_ADDR=(\S+)$`).FindSubmatch(dockerfile); m != nil {
		img.httpAddr = string(m[1])
	}
	m = regexp.MustCompile(`(?m)^USER ([^:\s]+)`).FindSubmatch(dockerfile)
	if m == nil {
		t.Fatal("the Dockerfile names no USER")
	}
	var ok bool
	if img.uid, ok = distrolessUsers[string(m[1])]; !ok {
		if img.uid, err = strconv.ParseInt(string(m[1]), 10, 64); err != nil {
			t.Fatalf("the Dockerfile's USER %s: not a distroless user nor a uid", m[1])
		}
	}
	return img
}

// imageRepo is an image reference without its tag or digest; the tag may
// be a compose variable, as in seckill:${SECKILL_VERSION:-compose}.
func imageRepo(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	name := strings.LastIndex(ref, "/") + 1
	if i := strings.Index(ref[name:], ":"); i >= 0 {
		ref = ref[:name+i]
	}
	return ref
}

// readKubeFiles reads the kustomization of dir and the files it lists, by
// their names in it.
func readKubeFiles(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	k, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	files["kustomization.yaml"] = k
	kust, err := decodeKustomization(k)
	if err != nil {
		return nil, err
	}
	for _, r := range kust.Resources {
		if !filepath.IsLocal(r) {
			return nil, fmt.Errorf("kustomization.yaml: resource %q is not a file of the base", r)
		}
		if files[r], err = os.ReadFile(filepath.Join(dir, r)); err != nil {
			return nil, fmt.Errorf("kustomization.yaml: %w", err)
		}
	}
	return files, nil
}

func decodeKustomization(data []byte) (types.Kustomization, error) {
	var k types.Kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		return k, fmt.Errorf("kustomization.yaml: %w", err)
	}
	if k.APIVersion != types.KustomizationVersion || k.Kind != types.KustomizationKind {
		return k, fmt.Errorf("kustomization.yaml: %s %s, want %s %s", k.APIVersion, k.Kind, types.KustomizationVersion, types.KustomizationKind)
	}
	return k, nil
}

// kubeBase is the base decoded: one object of each kind it must hold.
type kubeBase struct {
	kustomization types.Kustomization
	deployment    *appsv1.Deployment
	service       *corev1.Service
	configMap     *corev1.ConfigMap
	secret        *corev1.Secret
	pdb           *policyv1.PodDisruptionBudget
	hpa           *autoscalingv2.HorizontalPodAutoscaler
}

// loadKubeBase decodes the files read by readKubeFiles.
func loadKubeBase(files map[string][]byte) (*kubeBase, error) {
	k, err := decodeKustomization(files["kustomization.yaml"])
	if err != nil {
		return nil, err
	}
	b := &kubeBase{kustomization: k}
	for _, r := range k.Resources {
		objs, err := decodeStrict(files[r])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r, err)
		}
		if err := b.add(objs); err != nil {
			return nil, fmt.Errorf("%s: %w", r, err)
		}
	}
	return b, b.complete()
}

// renderKubeBase renders the base with kustomize, in memory, as
// `kubectl apply -k` would; with an overlay, the overlay's kustomization
// (its resources: the base) instead.
func renderKubeBase(files map[string][]byte, overlay string) (*kubeBase, error) {
	fs := filesys.MakeFsInMemory()
	for name, data := range files {
		if err := fs.WriteFile(path.Join("/base", name), data); err != nil {
			return nil, err
		}
	}
	dir := "/base"
	if overlay != "" {
		dir = "/overlay"
		k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../base\n" + overlay
		if err := fs.WriteFile("/overlay/kustomization.yaml", []byte(k)); err != nil {
			return nil, err
		}
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize: %w", err)
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, err
	}
	objs, err := decodeStrict(out)
	if err != nil {
		return nil, fmt.Errorf("kustomize's output: %w", err)
	}
	k, err := decodeKustomization(files["kustomization.yaml"])
	if err != nil {
		return nil, err
	}
	b := &kubeBase{kustomization: k}
	if err := b.add(objs); err != nil {
		return nil, fmt.Errorf("kustomize's output: %w", err)
	}
	return b, b.complete()
}

// kubeDecoder decodes YAML into the types of k8s.io/api strictly: an
// unknown field, a field given twice, or a kind outside its scheme fails.
var kubeDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, s, s, kjson.SerializerOptions{Yaml: true, Strict: true})
}()

// decodeStrict decodes each document of a YAML stream.
func decodeStrict(data []byte) ([]runtime.Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if j, err := yaml.YAMLToJSON(doc); err == nil && string(j) == "null" {
			continue // an empty document, or comments only
		}
		obj, _, err := kubeDecoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, err
		}
		objs = append(objs, obj)
	}
}

func (b *kubeBase) add(objs []runtime.Object) error {
	for _, obj := range objs {
		var err error
		switch o := obj.(type) {
		case *appsv1.Deployment:
			err = setOnce(&b.deployment, o)
		case *corev1.Service:
			err = setOnce(&b.service, o)
		case *corev1.ConfigMap:
			err = setOnce(&b.configMap, o)
		case *corev1.Secret:
			err = setOnce(&b.secret, o)
		case *policyv1.PodDisruptionBudget:
			err = setOnce(&b.pdb, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			err = setOnce(&b.hpa, o)
		default:
			err = fmt.Errorf("a %s: this test has no check for it", obj.GetObjectKind().GroupVersionKind().Kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func setOnce[T any](dst **T, o *T) error {
	if *dst != nil {
		return fmt.Errorf("a second %T", o)
	}
	*dst = o
	return nil
}

func (b *kubeBase) complete() error {
	var missing []string
	for what, absent := range map[string]bool{
		"Deployment": b.deployment == nil, "Service": b.service == nil, "ConfigMap": b.configMap == nil,
		"Secret": b.secret == nil, "PodDisruptionBudget": b.pdb == nil, "HorizontalPodAutoscaler": b.hpa == nil,
	} {
		if absent {
			missing = append(missing, what)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("the base has no %s", strings.Join(missing, ", "))
	}
	if n := len(b.deployment.Spec.Template.Spec.Containers); n != 1 {
		return fmt.Errorf("the Deployment's pod has %d containers, want the service's one", n)
	}
	return nil
}

func (b *kubeBase) container() *corev1.Container {
	return &b.deployment.Spec.Template.Spec.Containers[0]
}

// imageEntry is the kustomization's images entry for repo; zero if none.
func (b *kubeBase) imageEntry(repo string) types.Image {
	for _, i := range b.kustomization.Images {
		if i.Name == repo {
			return i
		}
	}
	return types.Image{}
}

// problems lists what is wrong with the base for the service built as img.
func (b *kubeBase) problems(img builtImage) []error {
	var ps []error
	for _, check := range []func(builtImage) []error{
		b.portProblems, b.shutdownProblems, b.envProblems, b.securityProblems, b.imageProblems, b.scaleProblems,
	} {
		ps = append(ps, check(img)...)
	}
	return ps
}

// portProblems: the probes and the Service reach the port the service
// listens on, SECKILL_HTTP_ADDR.
func (b *kubeBase) portProblems(img builtImage) []error {
	var ps []error
	c := b.container()
	addr := img.httpAddr
	if v, ok := b.env()["SECKILL_HTTP_ADDR"]; ok {
		addr = v
	}
	_, p, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil {
		return []error{fmt.Errorf("SECKILL_HTTP_ADDR %q has no port", addr)}
	}
	if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return int(cp.ContainerPort) == port }) {
		ps = append(ps, fmt.Errorf("the container declares no port %d, the one of SECKILL_HTTP_ADDR %q", port, addr))
	}
	for _, pr := range []struct {
		what, path string
		probe      *corev1.Probe
	}{
		{"liveness probe", livenessPath, c.LivenessProbe},
		{"readiness probe", readinessPath, c.ReadinessProbe},
		{"startup probe", livenessPath, c.StartupProbe},
	} {
		switch {
		case pr.probe == nil && pr.what == "startup probe":
		case pr.probe == nil || pr.probe.HTTPGet == nil:
			ps = append(ps, fmt.Errorf("%s: none, or not an httpGet", pr.what))
		case pr.probe.HTTPGet.Path != pr.path:
			ps = append(ps, fmt.Errorf("%s: path %q, want %q", pr.what, pr.probe.HTTPGet.Path, pr.path))
		case containerPort(c, pr.probe.HTTPGet.Port) != port:
			ps = append(ps, fmt.Errorf("%s: port %s, not the container's %d (SECKILL_HTTP_ADDR %q)", pr.what, pr.probe.HTTPGet.Port.String(), port, addr))
		}
	}
	if !slices.ContainsFunc(b.service.Spec.Ports, func(sp corev1.ServicePort) bool { return containerPort(c, sp.TargetPort) == port }) {
		var targets []string
		for _, sp := range b.service.Spec.Ports {
			targets = append(targets, "targetPort "+sp.TargetPort.String())
		}
		ps = append(ps, fmt.Errorf("the Service sends to %s, not to the container's port %d", strings.Join(targets, ", "), port))
	}
	if !selects(b.service.Spec.Selector, b.deployment) {
		ps = append(ps, fmt.Errorf("the Service's selector %v does not select the Deployment's pods", b.service.Spec.Selector))
	}
	return ps
}

// containerPort is p as a number: p itself, or the number of c's port so
// named; 0 when c has no such port.
func containerPort(c *corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return 0
}

func selects(sel map[string]string, d *appsv1.Deployment) bool {
	return len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(d.Spec.Template.Labels))
}

// shutdownProblems: the kubelet waits out the preStop sleep and the drain
// before its SIGKILL.
func (b *kubeBase) shutdownProblems(builtImage) []error {
	var ps []error
	var sleep time.Duration
	c := b.container()
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		// An exec of sleep cannot run: the image has no shell and no sleep.
		ps = append(ps, errors.New("the container's preStop is not a sleep action"))
	} else {
		sleep = time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
		if sleep <= 0 {
			ps = append(ps, fmt.Errorf("the preStop sleeps %v: the load balancers get no time to stop sending", sleep))
		}
	}
	grace := time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
	if g := b.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= sleep+drainTimeout {
		ps = append(ps, fmt.Errorf("terminationGracePeriodSeconds %v, not more than the preStop sleep %v and the shutdown's %v", grace, sleep, drainTimeout))
	}
	return ps
}

// env is every variable the container is given, and its value.
func (b *kubeBase) env() map[string]string {
	env := map[string]string{}
	maps.Copy(env, b.configMap.Data)
	for k, v := range b.secret.Data {
		env[k] = string(v)
	}
	maps.Copy(env, b.secret.StringData)
	for _, e := range b.container().Env {
		env[e.Name] = e.Value
	}
	return env
}

// envProblems: every variable set is one the service reads, the secrets
// come from the Secret, and Kafka is a real one.
func (b *kubeBase) envProblems(builtImage) []error {
	var ps []error
	read := map[string]bool{}
	for _, v := range configVars {
		read[v.env] = true
	}
	set := map[string][]string{
		"ConfigMap " + b.configMap.Name: slices.Collect(maps.Keys(b.configMap.Data)),
		"Secret " + b.secret.Name:       slices.Concat(slices.Collect(maps.Keys(b.secret.Data)), slices.Collect(maps.Keys(b.secret.StringData))),
	}
	for _, e := range b.container().Env {
		set["the container's env"] = append(set["the container's env"], e.Name)
		if e.ValueFrom != nil {
			ps = append(ps, fmt.Errorf("the container's env %s: valueFrom, where envFrom gives the ConfigMap and the Secret", e.Name))
		}
	}
	for k := range b.configMap.BinaryData {
		ps = append(ps, fmt.Errorf("ConfigMap %s: binaryData %s: the service reads text", b.configMap.Name, k))
	}
	for _, where := range slices.Sorted(maps.Keys(set)) {
		for _, k := range slices.Sorted(slices.Values(set[where])) {
			if !read[k] {
				ps = append(ps, fmt.Errorf("%s sets %s: the service reads no such variable (cmd/seckill/config.go)", where, k))
			}
		}
	}
	for _, k := range secretVars {
		if _, ok := b.secret.Data[k]; !ok && b.secret.StringData[k] == "" {
			ps = append(ps, fmt.Errorf("Secret %s does not set %s", b.secret.Name, k))
		}
		if _, ok := b.configMap.Data[k]; ok || slices.ContainsFunc(b.container().Env, func(e corev1.EnvVar) bool { return e.Name == k }) {
			ps = append(ps, fmt.Errorf("%s is set outside the Secret", k))
		}
	}
	var fromConfigMap, fromSecret bool
	for _, from := range b.container().EnvFrom {
		switch {
		case from.Prefix != "":
			ps = append(ps, fmt.Errorf("envFrom with prefix %q: the service's variables would be renamed", from.Prefix))
		case from.ConfigMapRef != nil && from.ConfigMapRef.Name == b.configMap.Name:
			fromConfigMap = true
		case from.SecretRef != nil && from.SecretRef.Name == b.secret.Name:
			fromSecret = true
		default:
			ps = append(ps, errors.New("envFrom names a ConfigMap or Secret the base does not hold"))
		}
	}
	if !fromConfigMap || !fromSecret {
		ps = append(ps, fmt.Errorf("envFrom does not give the container ConfigMap %s and Secret %s", b.configMap.Name, b.secret.Name))
	}
	if strings.TrimSpace(b.env()["SECKILL_KAFKA_BROKERS"]) == "" {
		ps = append(ps, errors.New("SECKILL_KAFKA_BROKERS is empty: the service would run the embedded development broker, which writes to a read-only root"))
	}
	return ps
}

// securityProblems: non-root as the image's user, nothing written, no
// privilege to gain, no capability, the runtime's seccomp profile; and
// resources bounded.
func (b *kubeBase) securityProblems(img builtImage) []error {
	var ps []error
	pod := b.deployment.Spec.Template.Spec.SecurityContext
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	sc := b.container().SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if nonRoot := cmpOr(sc.RunAsNonRoot, pod.RunAsNonRoot); nonRoot == nil || !*nonRoot {
		ps = append(ps, errors.New("runAsNonRoot is not true"))
	}
	if uid := cmpOr(sc.RunAsUser, pod.RunAsUser); uid == nil || *uid != img.uid {
		ps = append(ps, fmt.Errorf("runAsUser %s, want the image's user %d", orUnset(uid), img.uid))
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		ps = append(ps, errors.New("readOnlyRootFilesystem is not true"))
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		ps = append(ps, errors.New("allowPrivilegeEscalation is not false"))
	}
	if sc.Privileged != nil && *sc.Privileged {
		ps = append(ps, errors.New("privileged"))
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		ps = append(ps, errors.New("capabilities: not drop ALL, add none"))
	}
	seccomp := cmpOr(sc.SeccompProfile, pod.SeccompProfile)
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		ps = append(ps, errors.New("the seccomp profile is not RuntimeDefault"))
	}
	res := b.container().Resources
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := res.Requests[name]
		limit, hasLimit := res.Limits[name]
		switch {
		case !hasReq || req.IsZero():
			ps = append(ps, fmt.Errorf("resources: no %s request (the autoscaler's CPU utilisation needs one)", name))
		case !hasLimit || limit.IsZero():
			ps = append(ps, fmt.Errorf("resources: no %s limit", name))
		case req.Cmp(limit) > 0:
			ps = append(ps, fmt.Errorf("resources: %s request %s above its limit %s", name, req.String(), limit.String()))
		}
	}
	return ps
}

// cmpOr is the container's setting, else the pod's.
func cmpOr[T any](container, pod *T) *T {
	if container != nil {
		return container
	}
	return pod
}

// orUnset is *p as text, or "unset".
func orUnset[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

// imageProblems: the Deployment runs the image the Dockerfile builds, and
// the kustomization's images entry is the one to override it with.
func (b *kubeBase) imageProblems(img builtImage) []error {
	var ps []error
	if got := b.container().Image; imageRepo(got) != img.repo {
		ps = append(ps, fmt.Errorf("the container's image %q, not %s, the image docker-compose.yml and the Dockerfile build", got, img.repo))
	}
	if e := b.imageEntry(img.repo); e.Name == "" {
		ps = append(ps, fmt.Errorf("kustomization.yaml: no images entry for %s", img.repo))
	}
	return ps
}

// scaleProblems: the budget lets a drain take one replica at a time, the
// autoscaler scales this Deployment and never below its replicas.
func (b *kubeBase) scaleProblems(builtImage) []error {
	var ps []error
	replicas := 1
	if r := b.deployment.Spec.Replicas; r != nil {
		replicas = int(*r)
	}
	if replicas < 2 {
		ps = append(ps, fmt.Errorf("the Deployment has %d replica: one stop takes the service down", replicas))
	}
	pdb := b.pdb.Spec
	sel, err := metav1.LabelSelectorAsSelector(pdb.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(b.deployment.Spec.Template.Labels)) {
		ps = append(ps, errors.New("the PodDisruptionBudget does not select the Deployment's pods"))
	}
	var mayStop int
	switch {
	case pdb.MaxUnavailable != nil && pdb.MinAvailable == nil:
		mayStop, err = intstr.GetScaledValueFromIntOrPercent(pdb.MaxUnavailable, replicas, true)
	case pdb.MinAvailable != nil && pdb.MaxUnavailable == nil:
		var keep int
		keep, err = intstr.GetScaledValueFromIntOrPercent(pdb.MinAvailable, replicas, true)
		mayStop = replicas - keep
	default:
		err = errors.New("neither or both of minAvailable and maxUnavailable")
	}
	switch {
	case err != nil:
		ps = append(ps, fmt.Errorf("the PodDisruptionBudget: %w", err))
	case mayStop < 1 || mayStop >= replicas:
		ps = append(ps, fmt.Errorf("the PodDisruptionBudget lets %d of %d replicas stop at once: want at least one, not all", mayStop, replicas))
	}
	hpa := b.hpa.Spec
	if ref := hpa.ScaleTargetRef; ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != b.deployment.Name {
		ps = append(ps, fmt.Errorf("the autoscaler's scaleTargetRef %s %s %s, not the Deployment %s", ref.APIVersion, ref.Kind, ref.Name, b.deployment.Name))
	}
	if hpa.MinReplicas == nil || int(*hpa.MinReplicas) < replicas || hpa.MaxReplicas < *hpa.MinReplicas {
		ps = append(ps, fmt.Errorf("the autoscaler's minReplicas %s and maxReplicas %d: want the Deployment's %d replicas at least, and max no less than min",
			orUnset(hpa.MinReplicas), hpa.MaxReplicas, replicas))
	}
	if !slices.ContainsFunc(hpa.Metrics, func(m autoscalingv2.MetricSpec) bool {
		return m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU
	}) {
		ps = append(ps, errors.New("the autoscaler has no CPU metric"))
	}
	// Pods past the topic's partitions would consume nothing.
	if v, ok := b.configMap.Data["SECKILL_KAFKA_PARTITIONS"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < int(hpa.MaxReplicas) {
			ps = append(ps, fmt.Errorf("SECKILL_KAFKA_PARTITIONS %q: want a number no less than the autoscaler's maxReplicas %d", v, hpa.MaxReplicas))
		}
	}
	return ps
}
