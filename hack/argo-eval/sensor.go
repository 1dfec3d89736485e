package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/Knetic/govaluate"
	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	"github.com/argoproj/argo-events/pkg/sensors/dependencies"
	"github.com/argoproj/argo-events/pkg/sensors/triggers"
	standardk8s "github.com/argoproj/argo-events/pkg/sensors/triggers/standard-k8s"
	"github.com/argoproj/argo-events/pkg/shared/logging"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/tidwall/gjson"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

// EventOut is the event as a Sensor sees it (Argo's v1alpha1.Event, with the data as JSON).
type EventOut struct {
	Context *v1alpha1.EventContext `json:"context"`
	Data    json.RawMessage        `json:"data"`
}

// SensorReport is what one Sensor does with the event.
type SensorReport struct {
	Name         string             `json:"name"`
	Namespace    string             `json:"namespace"`
	Dependencies []DependencyReport `json:"dependencies"`
	Triggers     []TriggerReport    `json:"triggers"`
}

// DependencyReport: Outcome is "passed", "dropped" (a filter said no), "error" (a filter or the
// transform failed: Argo discards the event with a warning) or "not-routed" (the dependency waits for
// another EventSource or event name). Reasons say which filters said no, with the value they saw.
type DependencyReport struct {
	Name            string   `json:"name"`
	EventSourceName string   `json:"eventSourceName"`
	EventName       string   `json:"eventName"`
	Outcome         string   `json:"outcome"`
	Reasons         []string `json:"reasons,omitempty"`
}

// TriggerReport: Outcome is "fired" (Executions hold the requests it sent), "not-fired" (Reason
// says why) or "error" (a parameter or the trigger failed: Argo logs it and creates nothing).
type TriggerReport struct {
	Name       string      `json:"name"`
	Conditions string      `json:"conditions"`
	Outcome    string      `json:"outcome"`
	Reason     string      `json:"reason,omitempty"`
	Executions []Execution `json:"executions,omitempty"`
}

// Execution is one run of a trigger's action, for the dependencies whose events it got.
type Execution struct {
	Dependencies []string `json:"dependencies"`
	// Requests are the API requests the trigger sent, as client-go's fake dynamic client recorded them.
	Requests []Request `json:"requests,omitempty"`
	Error    string    `json:"error,omitempty"`
	// ArgoOutput holds what Argo's code printed, e.g. "failed to execute the src event template,
	// falling back to key or value": a parameter that did not resolve as written.
	ArgoOutput []string `json:"argoOutput,omitempty"`
}

// Request is one API request: verb, resource (group/version/resource), namespace, and the object
// (create, update) or patch body.
type Request struct {
	Verb      string          `json:"verb"`
	Resource  string          `json:"resource"`
	Namespace string          `json:"namespace,omitempty"`
	Name      string          `json:"name,omitempty"`
	Object    json.RawMessage `json:"object,omitempty"`
	PatchType string          `json:"patchType,omitempty"`
	Patch     json.RawMessage `json:"patch,omitempty"`
}

func eventOut(ce *cloudevents.Event) *EventOut {
	ev := convertEvent(ce)
	return &EventOut{Context: ev.Context, Data: json.RawMessage(ev.Data)}
}

// convertEvent is the Sensor's own conversion (sensors/listener.go convertEvent).
func convertEvent(event *cloudevents.Event) *v1alpha1.Event {
	return &v1alpha1.Event{
		Context: &v1alpha1.EventContext{
			DataContentType: event.Context.GetDataContentType(),
			Source:          event.Context.GetSource(),
			SpecVersion:     event.Context.GetSpecVersion(),
			Type:            event.Context.GetType(),
			Time:            metav1.Time{Time: event.Context.GetTime()},
			ID:              event.Context.GetID(),
			Subject:         event.Context.GetSubject(),
		},
		Data: event.Data(),
	}
}

type depResult struct {
	report DependencyReport
	event  *cloudevents.Event // after the transform; set when passed
}

func evaluateSensor(s *v1alpha1.Sensor, ce *cloudevents.Event, captured *stdoutCapture, verbose bool) SensorReport {
	rep := SensorReport{Name: s.Name, Namespace: s.Namespace, Dependencies: []DependencyReport{}, Triggers: []TriggerReport{}}
	results := map[string]*depResult{}
	for _, dep := range s.Spec.Dependencies {
		r := evaluateDependency(dep, ce)
		results[dep.Name] = r
		rep.Dependencies = append(rep.Dependencies, r.report)
	}
	logger := zap.NewNop().Sugar()
	if verbose {
		l, _ := zap.NewDevelopment()
		logger = l.Sugar()
	}
	for _, t := range s.Spec.Triggers {
		rep.Triggers = append(rep.Triggers, evaluateTrigger(s, t, results, captured, logger))
	}
	return rep
}

// evaluateDependency: the EventBus hands the event to a dependency only when its eventSourceName and
// eventName are the event's source and subject; then the Sensor applies the transform and the filters.
func evaluateDependency(dep v1alpha1.EventDependency, ce *cloudevents.Event) *depResult {
	r := &depResult{report: DependencyReport{Name: dep.Name, EventSourceName: dep.EventSourceName, EventName: dep.EventName}}
	if dep.EventSourceName != ce.Source() || dep.EventName != ce.Subject() {
		r.report.Outcome = "not-routed"
		r.report.Reasons = []string{fmt.Sprintf("waits for %s/%s; the event came from %s/%s", dep.EventSourceName, dep.EventName, ce.Source(), ce.Subject())}
		return r
	}
	event := ce.Clone()
	transformed := &event
	if dep.Transform != nil {
		t, err := dependencies.ApplyTransform(&event, dep.Transform)
		if err != nil {
			r.report.Outcome = "error"
			r.report.Reasons = []string{"transform: " + err.Error()}
			return r
		}
		transformed = t
	}
	if dep.Filters == nil {
		r.report.Outcome, r.event = "passed", transformed
		return r
	}
	ev := convertEvent(transformed)
	ok, err := dependencies.Filter(ev, dep.Filters, dep.FiltersLogicalOperator)
	switch {
	case ok:
		r.report.Outcome, r.event = "passed", transformed
		if err != nil {
			r.report.Reasons = []string{"passed with a filter error: " + err.Error()}
		}
	case err != nil:
		r.report.Outcome = "error"
		r.report.Reasons = []string{err.Error()}
	default:
		r.report.Outcome = "dropped"
		r.report.Reasons = failingFilters(ev, dep.Filters)
	}
	return r
}

// failingFilters runs Argo's Filter on each filter of the dependency alone and describes the ones
// that say no, with the value at their paths.
func failingFilters(ev *v1alpha1.Event, f *v1alpha1.EventDependencyFilter) []string {
	var out []string
	no := func(single *v1alpha1.EventDependencyFilter) bool {
		ok, err := dependencies.Filter(ev, single, "")
		return !ok || err != nil
	}
	seen := func(path string) string {
		v := gjson.GetBytes(ev.Data, path)
		if !v.Exists() {
			return "absent"
		}
		return v.Raw
	}
	for _, d := range f.Data {
		if no(&v1alpha1.EventDependencyFilter{Data: []v1alpha1.DataFilter{d}}) {
			cmp := ""
			if d.Comparator != "" {
				cmp = " " + string(d.Comparator)
			}
			out = append(out, fmt.Sprintf("data filter %s (%s%s %q): got %s", d.Path, d.Type, cmp, d.Value, seen(d.Path)))
		}
	}
	for _, e := range f.Exprs {
		if no(&v1alpha1.EventDependencyFilter{Exprs: []v1alpha1.ExprFilter{e}}) {
			var fields []string
			for _, fl := range e.Fields {
				fields = append(fields, fmt.Sprintf("%s=%s", fl.Name, seen(fl.Path)))
			}
			out = append(out, fmt.Sprintf("expr filter %q: false with %s", e.Expr, strings.Join(fields, ", ")))
		}
	}
	if f.Context != nil && no(&v1alpha1.EventDependencyFilter{Context: f.Context}) {
		out = append(out, fmt.Sprintf("context filter %+v: got type=%s source=%s subject=%s", *f.Context, ev.Context.Type, ev.Context.Source, ev.Context.Subject))
	}
	if f.Time != nil && no(&v1alpha1.EventDependencyFilter{Time: f.Time}) {
		out = append(out, fmt.Sprintf("time filter %s..%s: event time %s", f.Time.Start, f.Time.Stop, ev.Context.Time.UTC().Format("15:04:05")))
	}
	if f.Script != "" && no(&v1alpha1.EventDependencyFilter{Script: f.Script}) {
		out = append(out, "script filter returned false")
	}
	if len(out) == 0 {
		out = append(out, "the filters together said no (exprLogicalOperator/dataLogicalOperator)")
	}
	return out
}

// dependencyExpression is the trigger's condition over dependency names: `conditions`, or all
// dependencies joined by && (sensors/listener.go getDependencyExpression).
func dependencyExpression(s *v1alpha1.Sensor, t v1alpha1.Trigger) string {
	if t.Template != nil && t.Template.Conditions != "" {
		return t.Template.Conditions
	}
	var names []string
	for _, d := range s.Spec.Dependencies {
		names = append(names, d.Name)
	}
	return strings.Join(names, "&&")
}

func evaluateTrigger(s *v1alpha1.Sensor, t v1alpha1.Trigger, results map[string]*depResult, captured *stdoutCapture, logger *zap.SugaredLogger) TriggerReport {
	name := ""
	if t.Template != nil {
		name = t.Template.Name
	}
	exprText := dependencyExpression(s, t)
	rep := TriggerReport{Name: name, Conditions: exprText}
	// As the JetStream EventBus does (eventbus/jetstream/sensor/trigger_conn.go).
	expr, err := govaluate.NewEvaluableExpression(strings.ReplaceAll(exprText, "-", "\\-"))
	if err != nil {
		rep.Outcome, rep.Reason = "error", "dependency expression: "+err.Error()
		return rep
	}
	vars := unique(expr.Vars())
	var passed []string
	params := map[string]interface{}{}
	for _, v := range vars {
		r, ok := results[v]
		params[v] = ok && r.event != nil
		if ok && r.event != nil {
			passed = append(passed, v)
		}
	}
	if len(passed) == 0 {
		rep.Outcome, rep.Reason = "not-fired", fmt.Sprintf("no dependency of %q passed", exprText)
		return rep
	}
	var groups [][]string
	if !strings.Contains(exprText, "&") {
		// Each dependency that passes fires the trigger on its own.
		for _, p := range passed {
			groups = append(groups, []string{p})
		}
	} else {
		res, err := expr.Evaluate(params)
		if err != nil {
			rep.Outcome, rep.Reason = "error", "dependency expression: "+err.Error()
			return rep
		}
		if res != true {
			rep.Outcome = "not-fired"
			rep.Reason = fmt.Sprintf("%q needs more than this delivery (passed: %s); Argo keeps the event until the rest arrive", exprText, strings.Join(passed, ", "))
			return rep
		}
		groups = append(groups, passed)
	}
	rep.Outcome = "fired"
	for _, g := range groups {
		events := map[string]*v1alpha1.Event{}
		for _, d := range g {
			events[d] = convertEvent(results[d].event)
		}
		ex := execute(s, *t.DeepCopy(), events, captured, logger)
		ex.Dependencies = g
		if ex.Error != "" {
			rep.Outcome = "error"
		}
		rep.Executions = append(rep.Executions, ex)
	}
	return rep
}

// execute is the Sensor's triggerOne (sensors/listener.go) for a standard k8s trigger, with
// client-go's fake dynamic client in place of the API server.
func execute(s *v1alpha1.Sensor, trigger v1alpha1.Trigger, events map[string]*v1alpha1.Event, captured *stdoutCapture, logger *zap.SugaredLogger) Execution {
	var ex Execution
	captured.take() // only what this execution prints
	defer func() {
		if ex.ArgoOutput == nil {
			ex.ArgoOutput = captured.take()
		}
	}()
	if err := triggers.ApplyTemplateParameters(events, &trigger); err != nil {
		ex.Error = "failed to apply template parameters: " + err.Error()
		return ex
	}
	if trigger.Template.K8s == nil {
		ex.Error = "only standard k8s triggers are evaluated"
		return ex
	}
	if trigger.Policy != nil {
		ex.Error = "trigger policies are not evaluated"
		return ex
	}
	dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	impl := standardk8s.NewStandardK8sTrigger(nil, dyn, s, &trigger, logger)
	ctx := logging.WithLogger(context.Background(), logger)
	obj, err := impl.FetchResource(ctx)
	if err != nil {
		ex.Error = "fetch resource: " + err.Error()
		return ex
	}
	updated, err := impl.ApplyResourceParameters(events, obj)
	if err != nil {
		ex.ArgoOutput = captured.take()
		ex.Error = "apply resource parameters: " + err.Error() + unresolved(trigger.Template.K8s.Parameters, events)
		captured.take()
		return ex
	}
	if _, err := impl.Execute(ctx, events, updated); err != nil {
		ex.Error = "execute: " + err.Error()
	}
	for _, a := range dyn.Actions() {
		ex.Requests = append(ex.Requests, request(a))
	}
	return ex
}

// unresolved names the parameters Argo's ResolveParamValue cannot resolve (its own error does not).
func unresolved(params []v1alpha1.TriggerParameter, events map[string]*v1alpha1.Event) string {
	var bad []string
	for _, p := range params {
		if _, _, err := triggers.ResolveParamValue(p.Src, events); err != nil {
			src, _ := json.Marshal(p.Src)
			bad = append(bad, fmt.Sprintf("dest %s from %s", p.Dest, src))
		}
	}
	if len(bad) == 0 {
		return ""
	}
	return "; unresolved: " + strings.Join(bad, "; ")
}

func request(a k8stesting.Action) Request {
	gvr := a.GetResource()
	r := Request{Verb: a.GetVerb(), Resource: gvr.GroupVersion().String() + "/" + gvr.Resource, Namespace: a.GetNamespace()}
	switch act := a.(type) {
	case k8stesting.CreateAction:
		r.Object, _ = json.Marshal(act.GetObject())
	case k8stesting.UpdateAction:
		r.Object, _ = json.Marshal(act.GetObject())
	case k8stesting.PatchAction:
		r.Name, r.PatchType, r.Patch = act.GetName(), string(act.GetPatchType()), json.RawMessage(act.GetPatch())
	case k8stesting.GetAction:
		r.Name = act.GetName()
	case k8stesting.DeleteAction:
		r.Name = act.GetName()
	}
	return r
}

func unique(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
