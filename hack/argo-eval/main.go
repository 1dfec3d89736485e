// Command argo-eval runs ci-healer's Argo Events manifests (EventSources and Sensors) on one GitHub
// webhook delivery with Argo Events' own code, and prints what the Sensors would do as JSON.
//
// Nothing here re-implements Argo Events. The module github.com/argoproj/argo-events (the version
// pinned in go.mod; `argoEvents` in the output) does each step:
//
//  1. The manifests are decoded strictly (an unknown field is an error: Argo would silently ignore
//     it) into Argo's v1alpha1 types, then validated by Argo's own validators: the Sensor
//     controller's reconciler/sensor.ValidateSensor (against a JetStream EventBus, the default) and
//     the GitHub EventSource's ValidateEventSource.
//  2. The delivery is POSTed, with the headers GitHub sends, to the real GitHub EventSource listener
//     (eventsources/sources/github.EventListener.StartListening) on a loopback port, so the event
//     data is exactly what the listener publishes: {"headers": <Go's canonical http.Header>,
//     "body": <the payload re-encoded by the listener>, "metadata": …}.
//  3. The event is wrapped in the CloudEvent the EventSource adaptor builds (type, source =
//     EventSource name, subject = event name, id, time; eventsources/eventing.go) and routed to every
//     Sensor dependency with that eventSourceName and eventName, as the EventBus routes it.
//  4. Each dependency runs sensors/dependencies.ApplyTransform and sensors/dependencies.Filter.
//  5. Each trigger whose dependency expression holds (govaluate, as the JetStream EventBus evaluates
//     it) gets sensors/triggers.ApplyTemplateParameters, then the standard k8s trigger's own
//     FetchResource, ApplyResourceParameters and Execute against client-go's fake dynamic client,
//     which records the request Argo would send to the API server.
//
// What is ours, not Argo's: the routing in step 3 and the condition bookkeeping in step 5 for one
// delivery in isolation (a trigger that needs several dependencies reports that it waits), and the
// CloudEvent envelope in step 3 (Argo builds it inside a closure that needs a live EventBus). The
// webhook secret is not mounted, so signatures are not verified; API tokens are dropped so no
// webhook is registered.
//
// Usage:
//
//	argo-eval -f config/argo-events/ --check
//	argo-eval -f config/argo-events/ --event workflow_job --delivery ID --body payload.json [--header 'Name: value']…
//
// Exit status: 0 when the delivery was evaluated (whether or not anything fired), 1 when the
// manifests or the input are invalid (the JSON then holds only "error").
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"
)

// Output is what one run prints.
type Output struct {
	// ArgoEvents is the version of the Argo Events module this binary is built from.
	ArgoEvents string `json:"argoEvents"`
	// Error says why nothing was evaluated (invalid manifests or input).
	Error string `json:"error,omitempty"`
	// Manifests are the EventSources and Sensors as Argo's types decode them (with --check).
	Manifests *Manifests `json:"manifests,omitempty"`
	// Delivery is what the EventSource made of the HTTP request.
	Delivery *DeliveryReport `json:"delivery,omitempty"`
	// Event is the event the EventSource published (absent when it published none).
	Event *EventOut `json:"event,omitempty"`
	// Sensors holds one report per Sensor.
	Sensors []SensorReport `json:"sensors,omitempty"`
}

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

type pathFlags []string

func (p *pathFlags) String() string     { return strings.Join(*p, ", ") }
func (p *pathFlags) Set(v string) error { *p = append(*p, v); return nil }

func main() {
	// Argo's parameter code reports fallbacks with fmt.Printf; keep them out of our JSON and report
	// them per trigger instead.
	realStdout := os.Stdout
	captured, err := newStdoutCapture()
	if err != nil {
		fail(realStdout, err)
	}
	os.Exit(run(os.Args[1:], realStdout, captured))
}

func run(args []string, stdout io.Writer, captured *stdoutCapture) int {
	fs := flag.NewFlagSet("argo-eval", flag.ContinueOnError)
	var files pathFlags
	var headers headerFlags
	fs.Var(&files, "f", "manifest file or directory (repeatable); EventSource and Sensor objects are read, other kinds skipped")
	check := fs.Bool("check", false, "only decode and validate the manifests, and print them as Argo's types read them")
	event := fs.String("event", "", "the GitHub event (X-GitHub-Event), e.g. workflow_job")
	delivery := fs.String("delivery", "", "the delivery id (X-GitHub-Delivery)")
	body := fs.String("body", "", "file holding the delivery's JSON body as GitHub sends it ('-': standard input)")
	fs.Var(&headers, "header", "an extra or replacing request header, 'Name: value' (repeatable)")
	source := fs.String("source", "", "EVENTSOURCE/EVENTNAME receiving the delivery (default: the only GitHub entry)")
	secret := fs.String("webhook-secret", "argo-eval", "secret for the X-Hub-Signature-256 header GitHub sends when the EventSource has a webhookSecret")
	eventID := fs.String("event-id", "", "CloudEvent id (default: a random UUID, as the adaptor makes)")
	eventTime := fs.String("event-time", "", "CloudEvent time, RFC 3339 (default: now)")
	verbose := fs.Bool("v", false, "write Argo's logs to standard error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	out := Output{ArgoEvents: argoVersion()}
	emit := func(code int) int {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		_ = enc.Encode(out)
		return code
	}
	if len(files) == 0 {
		out.Error = "no manifests: pass -f FILE or -f DIR"
		return emit(1)
	}
	m, err := loadManifests(files)
	if err != nil {
		out.Error = err.Error()
		return emit(1)
	}
	if *check {
		out.Manifests = m
		return emit(0)
	}
	if *event == "" || *delivery == "" || *body == "" {
		out.Error = "--event, --delivery and --body are required (or --check)"
		return emit(1)
	}
	var payload []byte
	if *body == "-" {
		payload, err = io.ReadAll(os.Stdin)
	} else {
		payload, err = os.ReadFile(*body)
	}
	if err != nil {
		out.Error = fmt.Sprintf("read body: %v", err)
		return emit(1)
	}
	when := time.Now()
	if *eventTime != "" {
		if when, err = time.Parse(time.RFC3339, *eventTime); err != nil {
			out.Error = fmt.Sprintf("--event-time: %v", err)
			return emit(1)
		}
	}
	req := Delivery{
		Event: *event, ID: *delivery, Body: payload, ExtraHeaders: headers, Secret: *secret,
		EventID: *eventID, EventTime: when, Verbose: *verbose,
	}
	es, name, err := m.receiver(*source)
	if err != nil {
		out.Error = err.Error()
		return emit(1)
	}
	report, ev, err := deliver(es, name, req)
	if err != nil {
		out.Error = err.Error()
		return emit(1)
	}
	out.Delivery = report
	if ev == nil {
		return emit(0)
	}
	out.Event = eventOut(ev)
	for i := range m.Sensors {
		out.Sensors = append(out.Sensors, evaluateSensor(&m.Sensors[i], ev, captured, *verbose))
	}
	return emit(0)
}

func fail(w io.Writer, err error) {
	_ = json.NewEncoder(w).Encode(Output{ArgoEvents: argoVersion(), Error: err.Error()})
	os.Exit(1)
}

// argoVersion is the argo-events module version compiled into this binary.
func argoVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/argoproj/argo-events" {
				if d.Replace != nil {
					return d.Replace.Version
				}
				return d.Version
			}
		}
	}
	return "unknown"
}

// stdoutCapture collects what Argo's code prints to standard output (an unlinked temporary file
// behind os.Stdout), so each trigger can report the lines it caused.
type stdoutCapture struct {
	f      *os.File
	offset int64
}

func newStdoutCapture() (*stdoutCapture, error) {
	f, err := os.CreateTemp("", "argo-eval-stdout-")
	if err != nil {
		return nil, err
	}
	_ = os.Remove(f.Name())
	os.Stdout = f
	return &stdoutCapture{f: f}, nil
}

// take returns the lines printed since the last call.
func (c *stdoutCapture) take() []string {
	if c == nil {
		return nil
	}
	end, err := c.f.Seek(0, io.SeekEnd)
	if err != nil || end <= c.offset {
		return nil
	}
	buf := make([]byte, end-c.offset)
	if _, err := c.f.ReadAt(buf, c.offset); err != nil && !errors.Is(err, io.EOF) {
		return nil
	}
	c.offset = end
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(buf), "\n"), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
