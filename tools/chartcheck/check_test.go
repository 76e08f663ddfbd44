package main

import (
	"bytes"
	"strings"
	"testing"
)

// good is a small manifest that passes every rule; the table below breaks it
// one way at a time.
const good = `---
# Source: realtime/templates/configmap.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: rt
data:
  REALTIME_DRAIN_PERIOD: "20s"
  REALTIME_HOST: "rt-redis"
---
# Source: realtime/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata:
  name: rt
type: Opaque
data:
  api-key: c2VjcmV0
---
apiVersion: v1
kind: Service
metadata:
  name: rt
  labels:
    app: rt
    component: admin
spec:
  selector:
    app: rt
  ports:
    - name: http
      port: 80
      targetPort: http
    - name: admin
      port: 9090
      targetPort: admin
---
# Source: realtime/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rt
spec:
  replicas: 2
  selector:
    matchLabels:
      app: rt
  template:
    metadata:
      labels:
        app: rt
    spec:
      terminationGracePeriodSeconds: 35
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
      containers:
        - name: realtime
          image: realtime:dev
          envFrom:
            - configMapRef:
                name: rt
          env:
            - name: REALTIME_API_KEY
              valueFrom:
                secretKeyRef:
                  name: rt
                  key: api-key
            - name: REALTIME_REDIS_URL
              value: "redis://$(REALTIME_HOST):6380/0"
          ports:
            - name: http
              containerPort: 8080
            - name: admin
              containerPort: 9090
          readinessProbe:
            httpGet:
              path: /readyz
              port: admin
          livenessProbe:
            httpGet:
              path: /healthz
              port: admin
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities:
              drop: ["ALL"]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: rt
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app: rt
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: rt
spec:
  selector:
    matchLabels:
      component: admin
  endpoints:
    - port: admin
      path: /metrics
      interval: 30s
---
# an empty document, as Helm leaves behind for a disabled template
`

func TestGoodManifest(t *testing.T) {
	expectOK(t, good, options{},
		"chartcheck: 6 objects OK (1 ConfigMap, 1 Deployment, 1 PodDisruptionBudget, 1 Secret, 1 Service, 1 ServiceMonitor)\n")
}

// expectOK checks that chartcheck passes manifest with opts and prints want.
func expectOK(t *testing.T, manifest string, opts options, want string) {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := runWith(strings.NewReader(manifest), &out, &errOut, opts); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
	if out.String() != want {
		t.Errorf("stdout = %q, want %q", out.String(), want)
	}
}

// mutation is one edit of a good manifest and the error it must cause.
type mutation struct {
	name     string
	old, new string // replace the first old in the good manifest with new
	want     string // in one of the errors
}

// expectRefused checks, for each mutation of manifest, that chartcheck with
// opts fails with an error naming the mutation's want.
func expectRefused(t *testing.T, manifest string, opts options, tests []mutation) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(manifest, tt.old) {
				t.Fatalf("test bug: %q not in the good manifest", tt.old)
			}
			in := strings.Replace(manifest, tt.old, tt.new, 1)
			var out, errOut bytes.Buffer
			if code := runWith(strings.NewReader(in), &out, &errOut, opts); code != 1 {
				t.Fatalf("exit %d, want 1; stdout: %s", code, out.String())
			}
			if !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("stderr does not mention %q:\n%s", tt.want, errOut.String())
			}
		})
	}
}

func TestBadManifests(t *testing.T) {
	expectRefused(t, good, options{}, []mutation{
		{"unknown field", "      terminationGracePeriodSeconds: 35",
			"      terminationGracePeriodSeconds: 35\n      terminationGraceSeconds: 35",
			`Deployment: json: unknown field "terminationGraceSeconds"`},
		{"unknown nested field", "              path: /readyz",
			"              path: /readyz\n              scheme: HTTP\n              host2: x",
			`unknown field`},
		{"unknown field in ServiceMonitor", "      interval: 30s", "      interval: 30s\n      scrapeEvery: 30s",
			`ServiceMonitor: json: unknown field "scrapeEvery"`},
		{"wrong type: string for integer", "  replicas: 2", `  replicas: "2"`,
			"cannot unmarshal string into Go struct field"},
		{"wrong type: number for string env value", `value: "redis://$(REALTIME_HOST):6380/0"`, "value: 6380",
			"cannot unmarshal number into Go struct field"},
		{"wrong type: map for list", "              drop: [\"ALL\"]", "              drop: {all: true}",
			"cannot unmarshal object"},
		{"duplicate key", "  replicas: 2", "  replicas: 2\n  replicas: 3", `key "replicas" already set`},
		{"unknown kind", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgets", `unknown kind "policy/v1 PodDisruptionBudgets"`},
		{"wrong apiVersion", "apiVersion: policy/v1\n", "apiVersion: policy/v1beta1\n", `unknown kind "policy/v1beta1 PodDisruptionBudget"`},
		{"bad base64 in Secret", "api-key: c2VjcmV0", "api-key: not base64!", "illegal base64"},
		{"no readiness probe", "          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: admin\n", "",
			"has no readinessProbe"},
		{"no liveness probe", "          livenessProbe:\n", "          startupProbe:\n",
			"has no livenessProbe"},
		{"root allowed", "        runAsNonRoot: true\n", "", "does not set runAsNonRoot"},
		{"writable root", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "does not set readOnlyRootFilesystem"},
		{"grace equals drain", "terminationGracePeriodSeconds: 35", "terminationGracePeriodSeconds: 20",
			"terminationGracePeriodSeconds 20 does not exceed REALTIME_DRAIN_PERIOD 20s"},
		{"default grace below drain", `REALTIME_DRAIN_PERIOD: "20s"`, `REALTIME_DRAIN_PERIOD: "1m"`,
			"terminationGracePeriodSeconds 35 does not exceed REALTIME_DRAIN_PERIOD 1m"},
		{"bad drain period", `REALTIME_DRAIN_PERIOD: "20s"`, `REALTIME_DRAIN_PERIOD: "20"`, "missing unit"},
		{"missing secret key", "key: api-key", "key: api_key", `Secret "rt" has no key "api_key"`},
		{"missing configmap", "                name: rt\n          env:", "                name: rt-config\n          env:",
			`envFrom ConfigMap "rt-config" is not in the chart`},
		{"undefined $(VAR)", "$(REALTIME_HOST)", "$(REDIS_HOST)", "refers to $(REDIS_HOST)"},
		{"probe on undeclared port", "              path: /healthz\n              port: admin", "              path: /healthz\n              port: metrics",
			`probes port "metrics"`},
		{"service selects nothing", "  selector:\n    app: rt\n  ports:", "  selector:\n    app: realtime\n  ports:",
			"selector matches no pod template"},
		{"service targets undeclared port", "targetPort: http", "targetPort: ws", `targetPort "ws"`},
		{"deployment selector misses template", "    matchLabels:\n      app: rt\n  template:", "    matchLabels:\n      app: other\n  template:",
			"selector does not match the pod template's labels"},
		{"servicemonitor selects nothing", "      component: admin\n  endpoints", "      component: metrics\n  endpoints",
			"selector matches no Service"},
		{"servicemonitor port missing", "    - port: admin\n      path: /metrics", "    - port: metrics\n      path: /metrics",
			`endpoint port "metrics" is not a port of Service "rt"`},
	})
}

func TestEmptyInputFails(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(strings.NewReader("---\n# nothing\n---\n"), &out, &errOut, nil); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errOut.String(), "no documents") {
		t.Errorf("stderr = %q", errOut.String())
	}
}

func TestErrorsNameTheTemplate(t *testing.T) {
	in := strings.Replace(good, "  replicas: 2", "  replicas: two", 1)
	var out, errOut bytes.Buffer
	run(strings.NewReader(in), &out, &errOut, nil)
	if !strings.Contains(errOut.String(), "realtime/templates/deployment.yaml:") {
		t.Errorf("error does not name the source template:\n%s", errOut.String())
	}
}

func TestKnownEnv(t *testing.T) {
	help := `
  --drain-period duration
    	on SIGTERM, close connections (default 20s, env REALTIME_DRAIN_PERIOD)
  --api-key-file string
    	file holding the server API key (env REALTIME_API_KEY_FILE)
  (else REALTIME_API_KEY; no key disables the API)
  --redis-url string (env REALTIME_REDIS_URL)`
	known := envNamesIn(help)
	for _, name := range []string{"REALTIME_DRAIN_PERIOD", "REALTIME_API_KEY_FILE", "REALTIME_API_KEY", "REALTIME_REDIS_URL"} {
		if !known[name] {
			t.Errorf("envNamesIn misses %s", name)
		}
	}
	if len(known) != 4 {
		t.Errorf("envNamesIn = %v, want 4 names", known)
	}

	var out, errOut bytes.Buffer
	if code := run(strings.NewReader(good), &out, &errOut, known); code != 1 {
		t.Fatalf("exit %d, want 1 (REALTIME_HOST is not a node variable)", code)
	}
	if !strings.Contains(errOut.String(), "REALTIME_HOST is not a variable realtime reads") {
		t.Errorf("stderr:\n%s", errOut.String())
	}

	known["REALTIME_HOST"] = true
	out.Reset()
	errOut.Reset()
	if code := run(strings.NewReader(good), &out, &errOut, known); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}

	misspelt := strings.Replace(good, "name: REALTIME_API_KEY\n", "name: REALTIME_APIKEY\n", 1)
	out.Reset()
	errOut.Reset()
	if code := run(strings.NewReader(misspelt), &out, &errOut, known); code != 1 ||
		!strings.Contains(errOut.String(), `container "realtime": REALTIME_APIKEY is not a variable realtime reads`) {
		t.Errorf("exit %d, stderr:\n%s", code, errOut.String())
	}
}
