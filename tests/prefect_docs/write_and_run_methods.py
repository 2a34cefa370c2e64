# page: https://docs.prefect.io/v3/how-to-guides/workflows/write-and-run
# stdout: ^Hello, from an instance method!$
# stdout: ^Hello, from a class method!$
# stdout: ^Hello, from a static method!$
# stderr: Flow run 'my_instance_method-\w+' - flow run \w+ started
from daskflow import flow


class MyClass:
    @flow
    def my_instance_method(self):
        return "Hello, from an instance method!"

    @flow
    @classmethod
    def my_class_method(cls):
        return "Hello, from a class method!"

    @flow
    @staticmethod
    def my_static_method():
        return "Hello, from a static method!"


print(MyClass().my_instance_method())
print(MyClass.my_class_method())
print(MyClass.my_static_method())
