package deployrjson

import (
	"encoding/json"
	"fmt"
	"math/big"
	"sort"

	"github.com/imprint-osd/imprint/internal/deploy"
)

// jt is the JSON type a modelled field must have.
type jt int

const (
	tStr jt = iota
	tInt    // a JSON number that is a whole number
	tBool
	tStrArr // array of strings
	tStrMap // object of string values
	tObj
	tObjArr
)

// field describes one modelled key. null says whether JSON null is
// accepted (true only where the Go field keeps null: pointers, slices, maps).
type field struct {
	t    jt
	null bool
	obj  schema // for tObj and tObjArr
}

type schema map[string]field

func objArr(s schema) field { return field{t: tObjArr, null: true, obj: s} }

// schemaFor mirrors the JSON tags of the deploy document types.
func schemaFor(k Kind) schema {
	var (
		str     = field{t: tStr}
		strNull = field{t: tStr, null: true}
		integer = field{t: tInt}
		intNull = field{t: tInt, null: true}
		boolean = field{t: tBool}
		strArr  = field{t: tStrArr, null: true}
		strMap  = field{t: tStrMap, null: true}
	)
	switch k {
	case KindTaskSequence:
		step := schema{
			"id": str, "taskSequenceVersionId": strNull, "name": str, "description": strNull,
			"isGroup": boolean, "groupId": strNull, "typeId": strNull,
			"stepDefinitionVersionId": strNull, "stepDefinitionVersionNo": intNull,
			"settings": strMap, "contentItems": strMap, "enabled": boolean, "continueOnError": boolean,
			"condition": strNull, "createdDate": integer, "lastModifiedDate": integer,
		}
		step["groupMembers"] = objArr(step)
		version := schema{
			"id": str, "taskSequenceId": str, "versionNo": integer, "status": str, "description": strNull,
			"tags": strArr, "steps": objArr(step), "createdDate": integer, "lastModifiedDate": integer,
		}
		return schema{
			"id": str, "name": str, "description": strNull, "architecture": str, "tags": strArr,
			"versions": objArr(version), "versionsCount": integer, "createdDate": integer, "lastModifiedDate": integer,
		}
	case KindStepDefinition:
		option := schema{
			"name": str, "displayName": str, "description": strNull, "required": boolean, "defaultValue": strNull,
			"type": str, "contentItemPurpose": strNull, "hidden": boolean,
			"validations":     objArr(schema{"regexRule": str, "errorMessage": str}),
			"dropdownOptions": objArr(schema{"displayName": str, "value": str}),
		}
		version := schema{
			"id": str, "stepDefinitionId": str, "versionNo": integer, "status": str, "description": strNull,
			"options": objArr(option), "createdDate": integer, "lastModifiedDate": integer,
		}
		return schema{
			"id": str, "name": str, "description": strNull, "typeName": strNull, "versions": objArr(version),
			"versionsCount": integer, "createdDate": integer, "lastModifiedDate": integer, "readOnly": boolean, "tags": strArr,
		}
	case KindContentItem:
		file := schema{"path": str, "size": integer, "mode": integer, "sha256": str}
		version := schema{
			"id": str, "contentItemId": str, "versionNo": integer, "status": str, "description": strNull,
			"relativePath": strNull, "contentSize": integer, "externalURL": strNull,
			"createdDate": integer, "lastModifiedDate": integer,
			"installationCommandLine": strNull, "installationWorkingDirectory": strNull,
			"installationSuccessCodes": strNull, "installationDependencies": strArr,
			"driverManufacturer": strNull, "driverModel": strNull, "tags": strArr,
			"sha256": str, "manifest": {t: tObj, null: true, obj: schema{"files": objArr(file)}}, "awaitingContent": boolean,
		}
		return schema{
			"id": str, "name": str, "description": strNull, "contentItemType": str, "contentItemPurpose": str,
			"versions": objArr(version), "versionsCount": integer, "createdDate": integer, "lastModifiedDate": integer,
			"readOnly": boolean, "tags": strArr,
		}
	}
	return schema{}
}

// check walks the object v against s, in sorted key order so the first
// reported problem does not depend on map order.
func check(v any, s schema, path string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return typeErr(path, "object", v)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f, known := s[k]
		if !known {
			continue // unknown fields are kept verbatim
		}
		if err := checkField(m[k], f, join(path, k)); err != nil {
			return err
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func checkField(v any, f field, path string) error {
	if v == nil {
		if f.null {
			return nil
		}
		return typeErr(path, want(f.t), v)
	}
	switch f.t {
	case tStr:
		if _, ok := v.(string); !ok {
			return typeErr(path, "string", v)
		}
	case tBool:
		if _, ok := v.(bool); !ok {
			return typeErr(path, "boolean", v)
		}
	case tInt:
		n, ok := v.(json.Number)
		if !ok {
			return typeErr(path, "integer", v)
		}
		if _, err := n.Int64(); err != nil && !wholeNumber(n) {
			return deploy.Errorf(deploy.KindInvalid, "%s: want integer, got %s", path, n)
		}
	case tStrArr:
		a, ok := v.([]any)
		if !ok {
			return typeErr(path, "array of strings", v)
		}
		for i, x := range a {
			if _, ok := x.(string); !ok {
				return typeErr(fmt.Sprintf("%s[%d]", path, i), "string", x)
			}
		}
	case tStrMap:
		m, ok := v.(map[string]any)
		if !ok {
			return typeErr(path, "object", v)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if _, ok := m[k].(string); !ok {
				return typeErr(path+"."+k, "string", m[k])
			}
		}
	case tObj:
		return check(v, f.obj, path)
	case tObjArr:
		a, ok := v.([]any)
		if !ok {
			return typeErr(path, "array", v)
		}
		for i, x := range a {
			if err := check(x, f.obj, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// wholeNumber reports whether n, written with a fraction or exponent
// ("1.0", "1e0"), still holds a whole value that fits an int64.
func wholeNumber(n json.Number) bool {
	f, ok := new(big.Float).SetString(string(n))
	if !ok || !f.IsInt() {
		return false
	}
	_, acc := f.Int64()
	return acc == big.Exact
}

func want(t jt) string {
	return [...]string{"string", "integer", "boolean", "array of strings", "object", "object", "array"}[t]
}

func typeErr(path, want string, got any) error {
	where := path
	if where == "" {
		where = "document"
	}
	return deploy.Errorf(deploy.KindInvalid, "%s: want %s, got %s", where, want, jsonType(got))
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
