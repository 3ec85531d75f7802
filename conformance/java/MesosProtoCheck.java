// Reads protobuf bytes that Pando wrote and parses them with Mesos's own
// generated Java classes (org.apache.mesos.v1.*, from the Mesos 1.4.3 jar
// that pyspark 3.5.9 ships). For each message it prints two things:
//
//   * a field dump: every set field by path, with enums by name, bytes in
//     base64 and floating point as raw bits, plus any field number the Java
//     classes did not recognise ("?unknown");
//   * the message as Mesos JSON, computed here from the Java descriptors with
//     the rules Mesos's stout library applies (declaration order, set fields
//     plus non-deprecated explicit defaults, enums by name, base64 bytes,
//     rapidjson number layout).
//
// Pando's Rust test computes both from its own descriptors and compares.
// Agreement means our field numbers, names, types, declaration order,
// defaults and deprecations match the ones Mesos compiled into its classes.
//
// Usage: java -cp mesos.jar:. MesosProtoCheck <manifest>
// where each manifest line is "<java class name> <path to .bin file>".

import java.lang.reflect.Method;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Base64;
import java.util.List;
import java.util.Map;

import org.apache.mesos.protobuf.ByteString;
import org.apache.mesos.protobuf.Descriptors.EnumValueDescriptor;
import org.apache.mesos.protobuf.Descriptors.FieldDescriptor;
import org.apache.mesos.protobuf.Message;

public final class MesosProtoCheck {
  public static void main(String[] args) throws Exception {
    StringBuilder out = new StringBuilder();
    for (String line : Files.readAllLines(Paths.get(args[0]))) {
      if (line.trim().isEmpty()) {
        continue;
      }
      String[] parts = line.split(" ", 2);
      Class<?> type = Class.forName(parts[0]);
      Method parseFrom = type.getMethod("parseFrom", byte[].class);
      Message message = (Message) parseFrom.invoke(null, (Object) Files.readAllBytes(Paths.get(parts[1])));
      out.append("== ").append(parts[1]).append('\n');
      dump(message, "", out);
      out.append("json ");
      json(message, out);
      out.append('\n');
    }
    System.out.print(out);
  }

  // ---- field dump ---------------------------------------------------------

  private static void dump(Message message, String prefix, StringBuilder out) {
    for (Map.Entry<FieldDescriptor, Object> entry : message.getAllFields().entrySet()) {
      FieldDescriptor field = entry.getKey();
      String path = prefix + field.getName();
      if (field.isRepeated()) {
        List<?> items = (List<?>) entry.getValue();
        for (int i = 0; i < items.size(); i++) {
          dumpValue(field, items.get(i), path + "[" + i + "]", out);
        }
      } else {
        dumpValue(field, entry.getValue(), path, out);
      }
    }
    for (Integer number : message.getUnknownFields().asMap().keySet()) {
      out.append(prefix).append("?unknown ").append(number).append('\n');
    }
  }

  private static void dumpValue(FieldDescriptor field, Object value, String path, StringBuilder out) {
    switch (field.getJavaType()) {
      case MESSAGE:
        dump((Message) value, path + ".", out);
        return;
      case ENUM:
        out.append(path).append(" = ").append(((EnumValueDescriptor) value).getName());
        break;
      case BYTE_STRING:
        out.append(path).append(" = ")
            .append(Base64.getEncoder().encodeToString(((ByteString) value).toByteArray()));
        break;
      case DOUBLE:
        out.append(path).append(" = 0x")
            .append(Long.toHexString(Double.doubleToLongBits((Double) value)));
        break;
      case FLOAT:
        out.append(path).append(" = 0x")
            .append(Long.toHexString(Double.doubleToLongBits((double) (Float) value)));
        break;
      case STRING:
        out.append(path).append(" = ").append(quote((String) value));
        break;
      default:
        out.append(path).append(" = ").append(value);
    }
    out.append('\n');
  }

  // ---- Mesos JSON -----------------------------------------------------------

  private static void json(Message message, StringBuilder out) {
    out.append('{');
    boolean first = true;
    for (FieldDescriptor field : message.getDescriptorForType().getFields()) {
      boolean emit;
      if (field.isRepeated()) {
        emit = message.getRepeatedFieldCount(field) > 0;
      } else {
        emit = message.hasField(field)
            || (field.hasDefaultValue() && !field.getOptions().getDeprecated());
      }
      if (!emit) {
        continue;
      }
      if (!first) {
        out.append(',');
      }
      first = false;
      out.append(quote(field.getName())).append(':');
      Object value = message.getField(field);
      if (field.isRepeated()) {
        out.append('[');
        List<?> items = (List<?>) value;
        for (int i = 0; i < items.size(); i++) {
          if (i > 0) {
            out.append(',');
          }
          jsonValue(field, items.get(i), out);
        }
        out.append(']');
      } else {
        jsonValue(field, value, out);
      }
    }
    out.append('}');
  }

  private static void jsonValue(FieldDescriptor field, Object value, StringBuilder out) {
    switch (field.getJavaType()) {
      case MESSAGE:
        json((Message) value, out);
        break;
      case ENUM:
        out.append(quote(((EnumValueDescriptor) value).getName()));
        break;
      case BYTE_STRING:
        out.append(quote(Base64.getEncoder().encodeToString(((ByteString) value).toByteArray())));
        break;
      case STRING:
        out.append(quote((String) value));
        break;
      case DOUBLE:
        out.append(rapidjsonDouble((Double) value));
        break;
      case FLOAT:
        out.append(rapidjsonDouble((double) (Float) value));
        break;
      default:
        out.append(value);
    }
  }

  // rapidjson's layout of the shortest round-trip digits of a double.
  private static String rapidjsonDouble(double value) {
    if (Double.isNaN(value) || Double.isInfinite(value)) {
      return "null";
    }
    if (value == 0.0) {
      return (1.0 / value < 0) ? "-0.0" : "0.0";
    }
    StringBuilder out = new StringBuilder();
    if (value < 0) {
      out.append('-');
      value = -value;
    }
    BigDecimal decimal = new BigDecimal(Double.toString(value)).stripTrailingZeros();
    String digits = decimal.unscaledValue().toString();
    int k = -decimal.scale();
    int length = digits.length();
    int kk = length + k;
    if (k >= 0 && kk <= 21) {
      out.append(digits);
      for (int i = 0; i < k; i++) {
        out.append('0');
      }
      out.append(".0");
    } else if (0 < kk && kk <= 21) {
      out.append(digits, 0, kk).append('.').append(digits.substring(kk));
    } else if (-6 < kk && kk <= 0) {
      out.append("0.");
      for (int i = 0; i < -kk; i++) {
        out.append('0');
      }
      out.append(digits);
    } else {
      out.append(digits.charAt(0));
      if (length > 1) {
        out.append('.').append(digits.substring(1));
      }
      out.append('e').append(kk - 1);
    }
    return out.toString();
  }

  private static String quote(String s) {
    StringBuilder out = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"': out.append("\\\""); break;
        case '\\': out.append("\\\\"); break;
        case '\b': out.append("\\b"); break;
        case '\f': out.append("\\f"); break;
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\t': out.append("\\t"); break;
        default:
          if (c < 0x20) {
            out.append(String.format("\\u%04X", (int) c));
          } else {
            out.append(c);
          }
      }
    }
    return out.append('"').toString();
  }
}
