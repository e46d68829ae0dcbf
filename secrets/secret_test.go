package secrets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const plainSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

func TestSecretRedactsEverywhere(t *testing.T) {
	s := NewSecret(plainSecret)
	type exported struct{ Key Secret }
	type unexported struct{ key Secret }
	type pointer struct{ Key *Secret }

	render := map[string]func() (string, error){
		"%v":                     func() (string, error) { return fmt.Sprintf("%v", s), nil },
		"%+v":                    func() (string, error) { return fmt.Sprintf("%+v", s), nil },
		"%#v":                    func() (string, error) { return fmt.Sprintf("%#v", s), nil },
		"%s":                     func() (string, error) { return fmt.Sprintf("%s", s), nil },
		"%q":                     func() (string, error) { return fmt.Sprintf("%q", s), nil },
		"%x":                     func() (string, error) { return fmt.Sprintf("%x", s), nil },
		"pointer %v":             func() (string, error) { return fmt.Sprintf("%v", &s), nil },
		"exported field %+v":     func() (string, error) { return fmt.Sprintf("%+v", exported{s}), nil },
		"exported field %#v":     func() (string, error) { return fmt.Sprintf("%#v", exported{s}), nil },
		"unexported field %+v":   func() (string, error) { return fmt.Sprintf("%+v", unexported{s}), nil },
		"unexported field %#v":   func() (string, error) { return fmt.Sprintf("%#v", unexported{s}), nil },
		"pointer field %+v":      func() (string, error) { return fmt.Sprintf("%+v", pointer{&s}), nil },
		"slice %v":               func() (string, error) { return fmt.Sprintf("%v", []Secret{s}), nil },
		"map %v":                 func() (string, error) { return fmt.Sprintf("%v", map[string]Secret{"k": s}), nil },
		"error %v":               func() (string, error) { return fmt.Errorf("failed with %v", s).Error(), nil },
		"json.Marshal":           func() (string, error) { b, err := json.Marshal(s); return string(b), err },
		"json.Marshal in struct": func() (string, error) { b, err := json.Marshal(exported{s}); return string(b), err },
		"json.Marshal map key": func() (string, error) {
			b, err := json.Marshal(map[string]Secret{"k": s})
			return string(b), err
		},
		"MarshalText": func() (string, error) { b, err := s.MarshalText(); return string(b), err },
		"slog JSON": func() (string, error) {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("msg", "secret", s, "inside", exported{s}, "ptr", &s)
			return buf.String(), nil
		},
		"slog text": func() (string, error) {
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("msg", "secret", s, "inside", exported{s})
			return buf.String(), nil
		},
		"slog group": func() (string, error) {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("msg", slog.Group("g", "secret", s))
			return buf.String(), nil
		},
	}
	for name, f := range render {
		t.Run(name, func(t *testing.T) {
			got, err := f()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(got, plainSecret) || strings.Contains(got, fmt.Sprintf("%x", plainSecret)) {
				t.Fatalf("the secret leaked: %s", got)
			}
			// Every rendering that can call Secret's methods shows the marker;
			// the unexported and pointer fields show an address instead.
			if !strings.Contains(name, "unexported") && !strings.Contains(name, "pointer field") &&
				!strings.Contains(got, Redacted) && !strings.Contains(got, fmt.Sprintf("%x", Redacted)) {
				t.Fatalf("got %s, want it to show %s", got, Redacted)
			}
		})
	}
}

func TestSecretJSONIsTheMarker(t *testing.T) {
	b, err := json.Marshal(NewSecret(plainSecret))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `"[REDACTED]"` {
		t.Fatalf("json.Marshal = %s, want %q", b, `"[REDACTED]"`)
	}
}

func TestSecretReveal(t *testing.T) {
	if got := NewSecret(plainSecret).Reveal(); got != plainSecret {
		t.Fatalf("Reveal = %q, want the wrapped value", got)
	}
	var zero Secret
	if zero.IsSet() || zero.Reveal() != "" {
		t.Fatalf("zero Secret: IsSet %v Reveal %q, want false and empty", zero.IsSet(), zero.Reveal())
	}
	if !NewSecret("").IsSet() {
		t.Fatal(`NewSecret("").IsSet() = false, want true`)
	}
}
