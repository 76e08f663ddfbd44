package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// drainEnv is the node's drain period; the pod's grace period must exceed it, or
// the kubelet kills the node before it has moved its clients elsewhere.
const drainEnv = "REALTIME_DRAIN_PERIOD"

// defaultGrace is Kubernetes' terminationGracePeriodSeconds when unset.
const defaultGrace = 30

// workload is a Deployment or StatefulSet, seen through its pod template.
type workload struct {
	doc      doc
	selector *metav1.LabelSelector
	template *corev1.PodTemplateSpec
}

// manifest indexes a decoded stream for the cross-object rules.
type manifest struct {
	docs       []doc
	workloads  []workload
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
	services   map[string]*corev1.Service
}

func newManifest(docs []doc) *manifest {
	m := &manifest{
		docs:       docs,
		configMaps: map[string]*corev1.ConfigMap{},
		secrets:    map[string]*corev1.Secret{},
		services:   map[string]*corev1.Service{},
	}
	for _, d := range docs {
		switch o := d.obj.(type) {
		case *appsv1.Deployment:
			m.workloads = append(m.workloads, workload{d, o.Spec.Selector, &o.Spec.Template})
		case *appsv1.StatefulSet:
			m.workloads = append(m.workloads, workload{d, o.Spec.Selector, &o.Spec.Template})
		case *corev1.ConfigMap:
			m.configMaps[o.Name] = o
		case *corev1.Secret:
			m.secrets[o.Name] = o
		case *corev1.Service:
			m.services[o.Name] = o
		}
	}
	return m
}

// envPrefix starts every variable the node reads; it ignores unknown ones, so a
// misspelt name is a setting silently lost.
const envPrefix = "REALTIME_"

// lint runs the sanity rules over a decoded stream: every workload container is
// probed and locked down, references between objects resolve, and selectors
// select something. Secrets may come from outside the chart (existingSecret),
// so a Secret that is not in the stream is not an error; a ConfigMap is. When
// knownEnv is not nil, every REALTIME_* name in a ConfigMap or a container's
// env must be in it. Monitoring objects: see lintPrometheusRule and
// lintDashboards.
func lint(docs []doc, opts options) []error {
	knownEnv := opts.knownEnv
	m := newManifest(docs)
	var errs []error
	fail := func(d doc, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", d, fmt.Sprintf(format, args...)))
	}

	seen := map[string]bool{}
	for _, d := range docs {
		key := d.kind + "/" + d.obj.GetName()
		if seen[key] {
			fail(d, "duplicate object")
		}
		seen[key] = true
	}

	for _, w := range m.workloads {
		m.lintWorkload(w, fail)
		for _, c := range w.template.Spec.Containers {
			for _, e := range c.Env {
				if knownEnv != nil && strings.HasPrefix(e.Name, envPrefix) && !knownEnv[e.Name] {
					fail(w.doc, "container %q: %s is not a variable realtime reads", c.Name, e.Name)
				}
			}
		}
	}
	for _, d := range docs {
		switch o := d.obj.(type) {
		case *appsv1.StatefulSet:
			if _, ok := m.services[o.Spec.ServiceName]; !ok {
				fail(d, "serviceName %q is not a Service in the chart", o.Spec.ServiceName)
			}
		case *corev1.ConfigMap:
			for k := range o.Data {
				if knownEnv != nil && strings.HasPrefix(k, envPrefix) && !knownEnv[k] {
					fail(d, "%s is not a variable realtime reads", k)
				}
			}
			lintDashboards(d, o, fail)
		case *corev1.Service:
			m.lintService(d, o, fail)
		case *autoscalingv2.HorizontalPodAutoscaler:
			if !m.hasWorkload(o.Spec.ScaleTargetRef.Kind, o.Spec.ScaleTargetRef.Name) {
				fail(d, "scaleTargetRef %s/%s is not in the chart", o.Spec.ScaleTargetRef.Kind, o.Spec.ScaleTargetRef.Name)
			}
		case *policyv1.PodDisruptionBudget:
			if len(m.selectPods(o.Spec.Selector)) == 0 {
				fail(d, "selector matches no pod template")
			}
		case *networkingv1.NetworkPolicy:
			pods := m.selectPods(&o.Spec.PodSelector)
			if len(pods) == 0 {
				fail(d, "podSelector matches no pod template")
			}
			for _, rule := range o.Spec.Ingress {
				for _, p := range rule.Ports {
					if p.Port != nil && p.Port.Type == intstr.String && !anyHasPort(pods, p.Port.StrVal) {
						fail(d, "port %q is not a container port of the selected pods", p.Port.StrVal)
					}
				}
			}
		case *networkingv1.Ingress:
			m.lintIngress(d, o, fail)
		case *monitoringv1.ServiceMonitor:
			m.lintServiceMonitor(d, o, fail)
		case *monitoringv1.PrometheusRule:
			lintPrometheusRule(d, o, opts.runbook, fail)
		}
	}
	return errs
}

func (m *manifest) lintWorkload(w workload, fail func(doc, string, ...any)) {
	d, spec := w.doc, &w.template.Spec
	sel, err := metav1.LabelSelectorAsSelector(w.selector)
	switch {
	case err != nil:
		fail(d, "selector: %v", err)
	case w.selector == nil || sel.Empty():
		fail(d, "selector is empty")
	case !sel.Matches(labels.Set(w.template.Labels)):
		fail(d, "selector does not match the pod template's labels")
	}
	if len(spec.Containers) == 0 {
		fail(d, "no containers")
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		where := fmt.Sprintf("container %q", c.Name)
		if c.ReadinessProbe == nil {
			fail(d, "%s has no readinessProbe", where)
		}
		if c.LivenessProbe == nil {
			fail(d, "%s has no livenessProbe", where)
		}
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
			if port, ok := namedProbePort(p); ok && !hasPort(c, port) {
				fail(d, "%s probes port %q, which it does not declare", where, port)
			}
		}
		sc := c.SecurityContext
		if !runsAsNonRoot(spec.SecurityContext, sc) {
			fail(d, "%s does not set runAsNonRoot", where)
		}
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			fail(d, "%s does not set readOnlyRootFilesystem", where)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			fail(d, "%s does not set allowPrivilegeEscalation: false", where)
		}
		if sc == nil || sc.Capabilities == nil || !dropsAll(sc.Capabilities.Drop) {
			fail(d, "%s does not drop ALL capabilities", where)
		}
		env := m.lintEnv(d, where, c, fail)
		if v, ok := env[drainEnv]; ok {
			drain, err := time.ParseDuration(v)
			if err != nil {
				fail(d, "%s: %s=%q: %v", where, drainEnv, v, err)
				continue
			}
			grace := int64(defaultGrace)
			if spec.TerminationGracePeriodSeconds != nil {
				grace = *spec.TerminationGracePeriodSeconds
			}
			if time.Duration(grace)*time.Second <= drain {
				fail(d, "terminationGracePeriodSeconds %d does not exceed %s %s", grace, drainEnv, v)
			}
		}
	}
	for _, v := range spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			cm, ok := m.configMaps[v.ConfigMap.Name]
			if !ok && !isTrue(v.ConfigMap.Optional) {
				fail(d, "volume %q: ConfigMap %q is not in the chart", v.Name, v.ConfigMap.Name)
			}
			for _, it := range v.ConfigMap.Items {
				if ok && !hasKey(cm.Data, nil, it.Key) {
					fail(d, "volume %q: ConfigMap %q has no key %q", v.Name, cm.Name, it.Key)
				}
			}
		case v.Secret != nil:
			s, ok := m.secrets[v.Secret.SecretName]
			for _, it := range v.Secret.Items {
				if ok && !hasKey(s.StringData, s.Data, it.Key) {
					fail(d, "volume %q: Secret %q has no key %q", v.Name, s.Name, it.Key)
				}
			}
		}
	}
}

// varRef matches a Kubernetes dependent variable reference, $(NAME).
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// lintEnv checks a container's environment references and returns the plain
// values it can see (its ConfigMaps' data and literal env values).
func (m *manifest) lintEnv(d doc, where string, c *corev1.Container, fail func(doc, string, ...any)) map[string]string {
	values := map[string]string{}
	defined := map[string]bool{}
	for _, src := range c.EnvFrom {
		if ref := src.ConfigMapRef; ref != nil {
			cm, ok := m.configMaps[ref.Name]
			if !ok {
				if !isTrue(ref.Optional) {
					fail(d, "%s: envFrom ConfigMap %q is not in the chart", where, ref.Name)
				}
				continue
			}
			for k, v := range cm.Data {
				values[src.Prefix+k] = v
				defined[src.Prefix+k] = true
			}
		}
	}
	// Dependent variables ($(NAME)) expand only from variables defined before
	// them; an unresolved one stays a literal string, silently.
	checkRefs := func(what, s string) {
		for _, ref := range varRef.FindAllStringSubmatch(s, -1) {
			if !defined[ref[1]] {
				fail(d, "%s: %s refers to $(%s), which is not defined before it", where, what, ref[1])
			}
		}
	}
	for _, e := range c.Env {
		checkRefs("env "+e.Name, e.Value)
		defined[e.Name] = true
		if e.ValueFrom == nil {
			values[e.Name] = e.Value
			continue
		}
		if ref := e.ValueFrom.SecretKeyRef; ref != nil {
			if s, ok := m.secrets[ref.Name]; ok && !isTrue(ref.Optional) && !hasKey(s.StringData, s.Data, ref.Key) {
				fail(d, "%s: env %s: Secret %q has no key %q", where, e.Name, ref.Name, ref.Key)
			}
		}
		if ref := e.ValueFrom.ConfigMapKeyRef; ref != nil && !isTrue(ref.Optional) {
			if cm, ok := m.configMaps[ref.Name]; !ok {
				fail(d, "%s: env %s: ConfigMap %q is not in the chart", where, e.Name, ref.Name)
			} else if !hasKey(cm.Data, nil, ref.Key) {
				fail(d, "%s: env %s: ConfigMap %q has no key %q", where, e.Name, ref.Name, ref.Key)
			}
		}
	}
	for _, s := range append(append([]string{}, c.Command...), c.Args...) {
		checkRefs("command/args", s)
	}
	return values
}

func (m *manifest) lintService(d doc, s *corev1.Service, fail func(doc, string, ...any)) {
	if len(s.Spec.Selector) == 0 {
		fail(d, "selector is empty")
		return
	}
	pods := m.selectPods(&metav1.LabelSelector{MatchLabels: s.Spec.Selector})
	if len(pods) == 0 {
		fail(d, "selector matches no pod template")
		return
	}
	for _, p := range s.Spec.Ports {
		if p.TargetPort.Type == intstr.String && !anyHasPort(pods, p.TargetPort.StrVal) {
			fail(d, "targetPort %q is not a container port of the selected pods", p.TargetPort.StrVal)
		}
	}
}

func (m *manifest) lintIngress(d doc, ing *networkingv1.Ingress, fail func(doc, string, ...any)) {
	check := func(b *networkingv1.IngressBackend) {
		if b == nil || b.Service == nil {
			return
		}
		s, ok := m.services[b.Service.Name]
		if !ok {
			fail(d, "backend Service %q is not in the chart", b.Service.Name)
			return
		}
		for _, p := range s.Spec.Ports {
			if (b.Service.Port.Name != "" && p.Name == b.Service.Port.Name) ||
				(b.Service.Port.Number != 0 && p.Port == b.Service.Port.Number) {
				return
			}
		}
		fail(d, "backend Service %q has no port %s", s.Name, portString(b.Service.Port))
	}
	check(ing.Spec.DefaultBackend)
	for _, r := range ing.Spec.Rules {
		if r.HTTP == nil {
			continue
		}
		for i := range r.HTTP.Paths {
			check(&r.HTTP.Paths[i].Backend)
		}
	}
}

func (m *manifest) lintServiceMonitor(d doc, sm *monitoringv1.ServiceMonitor, fail func(doc, string, ...any)) {
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || sel.Empty() {
		fail(d, "selector is empty or invalid")
		return
	}
	var matched []*corev1.Service
	for _, s := range m.services {
		if sel.Matches(labels.Set(s.Labels)) {
			matched = append(matched, s)
		}
	}
	if len(matched) == 0 {
		fail(d, "selector matches no Service in the chart")
		return
	}
	if len(sm.Spec.Endpoints) == 0 {
		fail(d, "no endpoints")
	}
	for _, e := range sm.Spec.Endpoints {
		for _, s := range matched {
			if !serviceHasPort(s, e.Port) {
				fail(d, "endpoint port %q is not a port of Service %q", e.Port, s.Name)
			}
		}
	}
}

func (m *manifest) hasWorkload(kind, name string) bool {
	for _, w := range m.workloads {
		if w.doc.kind == kind && w.doc.obj.GetName() == name {
			return true
		}
	}
	return false
}

// selectPods returns the pod templates a label selector matches.
func (m *manifest) selectPods(ls *metav1.LabelSelector) []*corev1.PodTemplateSpec {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil || sel.Empty() {
		return nil
	}
	var out []*corev1.PodTemplateSpec
	for _, w := range m.workloads {
		if sel.Matches(labels.Set(w.template.Labels)) {
			out = append(out, w.template)
		}
	}
	return out
}

func runsAsNonRoot(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) bool {
	if c != nil && c.RunAsNonRoot != nil {
		return *c.RunAsNonRoot
	}
	return pod != nil && isTrue(pod.RunAsNonRoot)
}

func dropsAll(caps []corev1.Capability) bool {
	for _, c := range caps {
		if c == "ALL" {
			return true
		}
	}
	return false
}

func namedProbePort(p *corev1.Probe) (string, bool) {
	switch {
	case p == nil:
	case p.HTTPGet != nil && p.HTTPGet.Port.Type == intstr.String:
		return p.HTTPGet.Port.StrVal, true
	case p.TCPSocket != nil && p.TCPSocket.Port.Type == intstr.String:
		return p.TCPSocket.Port.StrVal, true
	}
	return "", false
}

func hasPort(c *corev1.Container, name string) bool {
	for _, p := range c.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

func anyHasPort(pods []*corev1.PodTemplateSpec, name string) bool {
	for _, p := range pods {
		for i := range p.Spec.Containers {
			if hasPort(&p.Spec.Containers[i], name) {
				return true
			}
		}
	}
	return false
}

func serviceHasPort(s *corev1.Service, name string) bool {
	for _, p := range s.Spec.Ports {
		if p.Name == name {
			return true
		}
	}
	return false
}

func hasKey(str map[string]string, bin map[string][]byte, key string) bool {
	if _, ok := str[key]; ok {
		return true
	}
	_, ok := bin[key]
	return ok
}

func isTrue(b *bool) bool { return b != nil && *b }

func portString(p networkingv1.ServiceBackendPort) string {
	if p.Name != "" {
		return fmt.Sprintf("%q", p.Name)
	}
	return fmt.Sprint(p.Number)
}
